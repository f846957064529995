/* The turn record: a list of writes and marks, no I/O. */
#include "turn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobtable.h"
#include "util.h"

void turn_touch(struct turn *t, struct job *j)
{
	if (j->flags & JF_DIRTY)
		return;
	j->flags |= JF_DIRTY;
	if (t->n_dirty == t->cap_dirty) {
		t->cap_dirty = t->cap_dirty ? t->cap_dirty * 2 : 256;
		t->dirty = xrealloc(t->dirty, t->cap_dirty * sizeof(*t->dirty));
	}
	t->dirty[t->n_dirty++] = j;
}

struct turn_row *turn_row(struct turn *t, enum turn_row_kind k)
{
	struct turn_row *r = xcalloc(1, sizeof(*r));
	r->kind = k;
	if (t->tail)
		t->tail->next = r;
	else
		t->head = r;
	t->tail = r;
	return r;
}

void turn_delivery(struct turn *t, const char *event_id, const char *hook, const char *state, unsigned attempts,
		   int64_t next_ms, const char *last_error)
{
	if (t->n_upd == t->cap_upd) {
		t->cap_upd = t->cap_upd ? t->cap_upd * 2 : 64;
		t->upd = xrealloc(t->upd, t->cap_upd * sizeof(*t->upd));
	}
	struct turn_delivery *u = &t->upd[t->n_upd++];
	snprintf(u->event_id, sizeof(u->event_id), "%s", event_id);
	u->hook = xstrdup(hook);
	u->state = state;
	u->attempts = attempts;
	u->next_ms = next_ms;
	u->last_error = last_error ? xstrdup(last_error) : NULL;
	u->updated_ms = util_wall_ms();
}

bool turn_has_writes(const struct turn *t)
{
	return t->n_dirty || t->head || t->n_upd;
}

bool turn_pending(const struct turn *t)
{
	return turn_has_writes(t) || t->ended || t->kick || t->requests || t->answers;
}

static void unplan(struct turn_row *r)
{
	for (size_t i = 0; i < r->n_hooks; i++)
		free(r->hooks[i]);
	free(r->hooks);
	r->hooks = NULL;
	r->n_hooks = 0;
	r->is_new = false;
}

void turn_unplan(struct turn *t)
{
	for (struct turn_row *r = t->head; r; r = r->next)
		unplan(r);
}

static void clear_upd(struct turn *t)
{
	for (size_t i = 0; i < t->n_upd; i++) {
		free(t->upd[i].hook);
		free(t->upd[i].last_error);
	}
	t->n_upd = 0;
}

static void clear_dirty(struct turn *t)
{
	for (size_t i = 0; i < t->n_dirty; i++) {
		struct job *j = t->dirty[i];
		j->flags &= (uint8_t)~(JF_DIRTY | JF_SEALED);
		jobtable_release(j);
	}
	t->n_dirty = 0;
}

void turn_seal(struct turn *t, struct turn *s)
{
	/* The sealed record's empty arrays become the next record's: no allocation per commit. */
	struct job **dirty = s->dirty;
	struct turn_delivery *upd = s->upd;
	size_t cap_dirty = s->cap_dirty, cap_upd = s->cap_upd;

	*s = *t;
	for (size_t i = 0; i < s->n_dirty; i++)
		s->dirty[i]->flags = (uint8_t)((s->dirty[i]->flags & ~JF_DIRTY) | JF_SEALED);
	memset(t, 0, sizeof(*t));
	t->dirty = dirty;
	t->cap_dirty = cap_dirty;
	t->upd = upd;
	t->cap_upd = cap_upd;
	t->gen = s->gen + 1;
}

void turn_unseal(struct turn *t, struct turn *s)
{
	if (s->head) {
		s->tail->next = t->head;
		t->head = s->head;
		if (!t->tail)
			t->tail = s->tail;
		s->head = s->tail = NULL;
	}
	/* Older delivery states first: a later state of the same delivery overwrites them in the commit. */
	if (s->n_upd + t->n_upd > s->cap_upd) {
		s->cap_upd = s->n_upd + t->n_upd;
		s->upd = xrealloc(s->upd, s->cap_upd * sizeof(*s->upd));
	}
	if (t->n_upd)
		memcpy(s->upd + s->n_upd, t->upd, t->n_upd * sizeof(*t->upd));
	struct turn_delivery *upd = t->upd;
	size_t cap = t->cap_upd;
	t->upd = s->upd;
	t->cap_upd = s->cap_upd;
	t->n_upd += s->n_upd;
	s->upd = upd;
	s->cap_upd = cap;
	s->n_upd = 0;
	/* Job rows are written from memory: touching them again writes their state as it is now. */
	for (size_t i = 0; i < s->n_dirty; i++) {
		struct job *j = s->dirty[i];
		j->flags &= (uint8_t)~JF_SEALED;
		if (!(j->flags & JF_REMOVED))
			turn_touch(t, j);
		jobtable_release(j);
	}
	s->n_dirty = 0;
	t->ended |= s->ended;
	t->kick |= s->kick;
	t->sweep |= s->sweep;
	t->requests |= s->requests;
	t->answers += s->answers;
	s->ended = s->kick = s->requests = false;
	s->sweep = 0;
	s->answers = 0;
}

struct turn_row *turn_committed(struct turn *t)
{
	struct turn_row *rows = t->head;
	clear_dirty(t);
	clear_upd(t);
	t->head = t->tail = NULL;
	return rows;
}

void turn_rows_free(struct turn_row *r)
{
	while (r) {
		struct turn_row *next = r->next;
		unplan(r);
		free(r->subject);
		free(r->batch);
		free(r->job_name);
		free(r->text);
		free(r->last_error);
		free(r);
		r = next;
	}
}

void turn_free(struct turn *t)
{
	turn_rows_free(t->head);
	t->head = t->tail = NULL;
	clear_dirty(t);
	clear_upd(t);
	free(t->dirty);
	free(t->upd);
	memset(t, 0, sizeof(*t));
}
