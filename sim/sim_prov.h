/*
 * Private to the simulator's other providers (sim_prov*.c): the batch model
 * they share (status words, timeline steps, a batch and its view at one
 * time), what a page answer needs, and the table of one provider.
 */
#ifndef EW_SIM_PROV_H
#define EW_SIM_PROV_H

#include "sim.h"

#define PW_MAX 8
/* A time that has not come (sim times may be negative: the history's, on the manual clock). */
#define NEVER INT64_MIN

/* One status word: whether it ends the batch, whether its unfinished requests then count as succeeded. */
struct pword {
	const char *word;
	bool terminal;
	bool success;
	const char *at_field;       /* OpenAI: the member that says when the word was reached */
};

/* Request counts as a timeline step sets them; the rest of the total is processing. */
enum { PC_SUCCEEDED, PC_FAILED, PC_EXPIRED, PC_CANCELED, PC__MAX };

struct pstep {
	int word;                   /* index into the provider's words */
	uint64_t at_ms;             /* since creation */
	bool has_counts;
	int64_t n[PC__MAX];
};

struct pbatch {
	char *id;
	char *name_json, *model_json;   /* JSON strings, quotes included */
	int64_t created_ms;         /* sim clock */
	int64_t total;
	struct pstep steps[SIM_MAX_STEPS];
	int n_steps;
	int64_t cancel_delay_ms;    /* < 0: --cancel-delay */
	bool cancel_requested;
	int64_t cancel_ms;
	bool history;               /* --provider-history: ended long ago */
	uint64_t requests;
	int64_t first_ms, last_ms;
};

/* A batch at one time: what its API shows. */
struct pview {
	int word;
	bool ended, cancelled;
	int64_t changed_ms;         /* sim clock, when the word was reached */
	int64_t at[PW_MAX];         /* sim clock, when each word was reached, or NEVER */
	int64_t n[PC__MAX];
	int64_t processing;
};

struct pdef;
/* What a page answer needs besides the batches: the request (its query) and the URL the results are under. */
struct pctx {
	struct MHD_Connection *c;
	const struct pdef *d;
	int64_t now;
	char base[160];             /* scheme://host of this request, for Anthropic's results_url */
};

/* One provider: its paths, words, page sizes, and the code for its shapes (a driver table). */
struct pdef {
	const char *name;           /* in the admin path, fault targets, stats and the log's endpoint names */
	const char *path;           /* GET path (list), GET path/ID, POST path/ID + cancel */
	const char *cancel;
	const char *default_model;
	struct pword words[PW_MAX]; /* the first is a new batch's */
	int cancelling;             /* the word while a cancel is pending, -1: none (the state stays) */
	int cancelled;              /* the word a cancel ends in */
	const char *not_found[2];   /* the 404 message: what goes before the id, and after it */
	void (*render)(struct buf *o, const struct pbatch *b, const struct pview *v, const struct pctx *x);
	void (*error)(struct buf *o, int status, const char *msg);
	int (*auth)(struct pctx *x, const char *token, struct buf *o);   /* 0, or a status with its body in o */
	int (*page)(struct pctx *x, struct pbatch **all, size_t n, struct buf *o, const char **err);
	bool cancel_answers_empty;  /* Gemini: google.protobuf.Empty */
};

/* The four providers' tables (sim_prov_shapes.c). */
extern const struct pdef sim_prov_defs[SIM_PROV__MAX];
/* Batch b of provider d as its API shows it at sim time now (sim_providers.c). */
void sim_prov_view(const struct pdef *d, const struct pbatch *b, int64_t now, struct pview *v);

#endif
