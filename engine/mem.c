/*
 * mem.c — booking device allocations to (stage, kind); see mem.h.
 *
 * A record is kept per live allocation so that tt_mem_free can take back
 * exactly what tt_mem_alloc booked.  Models make a few dozen allocations,
 * so a linear search is the simplest correct thing.
 */
#include "mem.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

#define ROWS (TT_MEM_MAX_STAGES + 1)

void tt_mem_init(tt_mem *m, const tt_backend *be)
{
	memset(m, 0, sizeof *m);
	m->be = be;
}

static int row_of(int stage)
{
	TT_ASSERT(stage == TT_MEM_MODEL || (stage >= 0 && stage < TT_MEM_MAX_STAGES));
	return stage == TT_MEM_MODEL ? TT_MEM_MAX_STAGES : stage;
}

static int grow(tt_mem *m)
{
	if (m->nrec < m->caprec)
		return 0;
	int cap = m->caprec ? 2 * m->caprec : 32;
	tt_mem_rec *rec = realloc(m->rec, (size_t)cap * sizeof *rec);
	if (!rec)
		return -1;
	m->rec = rec;
	size_t *split = realloc(m->split_store, (size_t)cap * ROWS * sizeof *split);
	if (!split)
		return -1;
	m->split_store = split;
	m->caprec = cap;
	return 0;
}

static void book(tt_mem *m, void *p, int kind, const size_t *share_rows, size_t total)
{
	tt_mem_rec *r = &m->rec[m->nrec];
	size_t *split = m->split_store + (size_t)m->nrec * ROWS;
	memcpy(split, share_rows, ROWS * sizeof *split);
	r->p = p;
	r->kind = kind;
	r->total = total;
	m->nrec++;
	for (int s = 0; s < ROWS; s++)
		m->bytes[s][kind] += split[s];
	m->current += total;
	if (m->current > m->peak)
		m->peak = m->current;
}

static void *alloc_rows(tt_mem *m, int kind, const size_t *rows)
{
	size_t total = 0;
	for (int s = 0; s < ROWS; s++)
		total += rows[s];
	if (total == 0 || grow(m))
		return NULL;
	void *p = m->be->alloc(total);
	if (!p)
		return NULL;
	book(m, p, kind, rows, total);
	return p;
}

void *tt_mem_alloc(tt_mem *m, int stage, int kind, size_t bytes)
{
	size_t rows[ROWS] = {0};
	rows[row_of(stage)] = bytes;
	return alloc_rows(m, kind, rows);
}

void *tt_mem_alloc_split(tt_mem *m, int kind, const size_t *share, int nstage)
{
	size_t rows[ROWS] = {0};
	TT_ASSERT(nstage <= TT_MEM_MAX_STAGES);
	for (int s = 0; s < nstage; s++)
		rows[s] = share[s];
	return alloc_rows(m, kind, rows);
}

void tt_mem_free(tt_mem *m, void *p)
{
	if (!p)
		return;
	for (int i = 0; i < m->nrec; i++) {
		if (m->rec[i].p != p)
			continue;
		size_t *split = m->split_store + (size_t)i * ROWS;
		for (int s = 0; s < ROWS; s++)
			m->bytes[s][m->rec[i].kind] -= split[s];
		m->current -= m->rec[i].total;
		m->be->free(p);
		/* keep records dense: move the last one into the hole */
		int last = --m->nrec;
		if (i != last) {
			m->rec[i] = m->rec[last];
			memcpy(split, m->split_store + (size_t)last * ROWS, ROWS * sizeof *split);
		}
		return;
	}
	TT_ASSERT(!"tt_mem_free of a pointer this accounting never handed out");
}

void tt_mem_release(tt_mem *m)
{
	while (m->nrec)
		tt_mem_free(m, m->rec[m->nrec - 1].p);
	free(m->rec);
	free(m->split_store);
	m->rec = NULL;
	m->split_store = NULL;
	m->caprec = 0;
}

size_t tt_mem_kind_total(const tt_mem *m, int kind)
{
	size_t t = 0;
	for (int s = 0; s < ROWS; s++)
		t += m->bytes[s][kind];
	return t;
}
