/* The webhook driver: the event as a signed POST (Standard Webhooks) through the shared curl multi; its secrets. */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "hooks_int.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "sign.h"
#include "util.h"

/* A webhook attempt: the generic run and its request. */
struct webhook_run {
	struct run run;
	struct http_req *req;
	struct http_headers *headers;
};

static void webhook_done(struct http_req *req, const struct http_result *res, void *arg)
{
	struct run *r = arg;
	struct hooks *hs = r->hs;
	struct delivery *d = r->d;
	char why[320];
	struct hook_outcome o = { .why = why, .ms = uv_now(hs->ew->loop) - r->started };
	bool gone = false;

	hooks_run_unlink(hs, r);
	metrics_count_rx(&hs->ew->m, EP_WEBHOOK, res->wire_bytes, res->decoded_bytes);
	if (res->error != HTTP_OK) {
		snprintf(why, sizeof(why), "%s%s", res->error == HTTP_ERR_TLS ? "TLS: " : "", res->error_text);
	} else if (res->status >= 200 && res->status < 300) {
		o.ok = true;
		why[0] = '\0';
	} else {
		snprintf(why, sizeof(why), "HTTP %ld", res->status);
		if (res->status == 410) {
			gone = true;
		} else if (res->status == 429 || res->status >= 500) {
			const char *ra = http_header(req, "Retry-After");
			int64_t s;
			if (ra && api_retry_after(ra, util_wall_ms() / 1000, 86400, &s) == 0 && s > 0) {
				o.min_delay_ms = (uint64_t)s * 1000;
				hooks_ops_pause(hs, d->hook, o.min_delay_ms);   /* this hook only: the others go on */
			}
		} else {
			o.permanent = true;       /* other 4xx and any 3xx: redirects are not followed */
		}
	}
	if (gone) {
		/* The receiver says the endpoint is gone: not an attempt of this delivery; the hook is disabled. */
		hooks_ops_note(hs, d->hook, false, why);
		hooks_ops_disable(hs, d->hook, "the endpoint answered 410 Gone");
		hooks_unclaim(hs, d, true);
	} else if (d->hook->disabled_ms && !o.ok) {
		hooks_unclaim(hs, d, true);     /* the hook was disabled while this ran: it waits */
	} else {
		hooks_finish(hs, d, &o);
	}
	hooks_run_free(r);
	hooks_pump(hs);
}

static int webhook_start(struct hooks *hs, struct run *r)
{
	struct webhook_run *w = container_of(r, struct webhook_run, run);
	struct delivery *d = r->d;
	struct hook_rt *h = d->hook;
	const struct ew_hook *c = h->cfg;
	char sig[SIGN_MAX_SECRETS * 64], line[SIGN_MAX_SECRETS * 64 + 64];
	int64_t ts = util_wall_ms() / 1000;

	/* The receiver's status is the answer; its body is not read. */
	w->req = http_req_new(hs->ew->http, 65536, true);
	if (!w->req)
		return -ENOMEM;
	w->headers = http_headers_new();
	http_headers_add(w->headers, "Content-Type: application/json");
	snprintf(line, sizeof(line), "webhook-id: %s", d->event_id);
	http_headers_add(w->headers, line);
	snprintf(line, sizeof(line), "webhook-timestamp: %lld", (long long)ts);
	http_headers_add(w->headers, line);
	if (h->n_secrets) {
		sign_header(h->secrets, h->n_secrets, d->event_id, ts, d->payload->data, d->payload->len, sig, sizeof(sig));
		snprintf(line, sizeof(line), "webhook-signature: %s", sig);
		http_headers_add(w->headers, line);
	}
	http_headers_add(w->headers, "Expect:");
	const struct ew_config *cfg = &hs->ew->cfg;
	struct http_opts o = {
		.ca_file = c->ca_file,
		/* The hook's proxy, "direct" for none, else the daemon's (else the environment's). */
		.proxy = c->proxy ? (strcmp(c->proxy, "direct") == 0 ? "" : c->proxy) : cfg->proxy,
		.no_proxy = c->no_proxy ? c->no_proxy : cfg->no_proxy,
		.proxy_userpwd = hs->ew->proxy_userpwd,
	};
	http_req_set(w->req, c->url, w->headers, d->payload->data, d->payload->len, &o);
	return http_submit(w->req, (long)c->timeout_ms, webhook_done, r);
}

/* Loads the secrets of a webhook hook: secret_file, else the credential "webhook-NAME" (the driver's configure). */
static int webhook_configure(struct hook_rt *h, const struct ew_hook *c)
{
	char path[4096], err[512];
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	const char *file = c->secret_file;

	h->n_secrets = 0;
	if (c->type != HOOK_WEBHOOK)
		return 0;
	if (!file && creds) {
		snprintf(path, sizeof(path), "%s/webhook-%s", creds, c->name);
		if (access(path, R_OK) == 0)
			file = path;
	}
	if (!file) {
		log_ctx(LOG_WARNING, &((struct log_ctx){ .hook = c->name }),
			"webhook %s has no secret: its deliveries are not signed", c->name);
		return 0;
	}
	int n = sign_secrets_load(file, h->secrets, SIGN_MAX_SECRETS, err, sizeof(err));
	if (n < 0) {
		log_ctx(LOG_ERR, &((struct log_ctx){ .hook = c->name }), "webhook %s: %s", c->name, err);
		return n;
	}
	h->n_secrets = (size_t)n;
	return 0;
}

int hooks_check_secrets(const struct ew_config *cfg, char *err, size_t errlen)
{
	struct hook_rt tmp;
	int r = 0;

	for (size_t i = 0; i < cfg->n_hooks && r == 0; i++) {
		const struct ew_hook *c = &cfg->hooks[i];
		if (c->type != HOOK_WEBHOOK)
			continue;
		memset(&tmp, 0, sizeof(tmp));
		r = webhook_configure(&tmp, c);
		if (r < 0)
			snprintf(err, errlen, "webhook %s: its secret cannot be loaded (see the line above)", c->name);
		OPENSSL_cleanse(&tmp, sizeof(tmp));
	}
	return r;
}

static struct run *webhook_alloc(void)
{
	struct webhook_run *w = xcalloc(1, sizeof(*w));
	return &w->run;
}

/* The grace is over: the request is dropped, and the delivery stays pending. */
static void webhook_stop(struct hooks *hs, struct run *r)
{
	hooks_run_unlink(hs, r);
	hooks_unclaim(hs, r->d, false);
	hooks_run_free(r);
}

static void webhook_free(struct run *r)
{
	struct webhook_run *w = container_of(r, struct webhook_run, run);
	http_req_free(w->req);
	http_headers_unref(w->headers);
	free(w);
}

const struct hook_driver hooks_webhook_driver = {
	.configure = webhook_configure,
	.alloc = webhook_alloc,
	.start = webhook_start,
	.stop = webhook_stop,
	.free = webhook_free,
};
