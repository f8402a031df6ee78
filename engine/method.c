/*
 * method.c — the registry of training methods; see method.h.
 *
 * The built-in methods are one line each in the table below, in the order
 * their hooks run and their results appear in the JSON.  Tests may add
 * methods of their own (tt_method_register) before any run starts.
 */
#include "method.h"

#include <string.h>

#include "ckpt.h"

static const tt_method *const builtin[] = {
	&tt_method_gates,
	&tt_method_evograd,
	&tt_method_continual,
};

#define NBUILTIN ((int)(sizeof builtin / sizeof builtin[0]))

/* added by tt_method_register, after the built-in ones */
static const tt_method *extra[TT_METHODS_MAX];
static int nextra;

int tt_method_count(void)
{
	return NBUILTIN + nextra;
}

const tt_method *tt_method_get(int i)
{
	if (i < 0 || i >= tt_method_count())
		return NULL;
	return i < NBUILTIN ? builtin[i] : extra[i - NBUILTIN];
}

int tt_method_register(const tt_method *m, tt_err *err)
{
	if (!m || !m->name || !m->wants)
		return tt_err_set(err, TT_EINPUT, "a method needs a name and wants");
	if (m->tag == TT_CK_CORE || m->tag == TT_CK_CORE_V1)
		return tt_err_set(err, TT_EINPUT, "method '%s': its checkpoint tag is the "
		                  "core section's", m->name);
	if (tt_method_count() >= TT_METHODS_MAX)
		return tt_err_set(err, TT_EINPUT, "method '%s': all %d places are taken",
		                  m->name, TT_METHODS_MAX);
	for (int i = 0; i < tt_method_count(); i++) {
		const tt_method *o = tt_method_get(i);
		if (strcmp(o->name, m->name) == 0 || (m->tag && o->tag == m->tag))
			return tt_err_set(err, TT_EINPUT, "method '%s': its name or checkpoint "
			                  "tag is method '%s''s", m->name, o->name);
	}
	extra[nextra++] = m;
	return TT_OK;
}

int tt_method_result_value(const tt_train_result *r, const char *name, double *v)
{
	tt_method_value vals[32];
	for (int i = 0; i < tt_method_count(); i++) {
		const tt_method *m = tt_method_get(i);
		if (!(r->methods >> i & 1u) || !m->values)
			continue;
		int n = m->values(r, vals, (int)(sizeof vals / sizeof *vals));
		for (int k = 0; k < n; k++)
			if (strcmp(vals[k].name, name) == 0) {
				*v = vals[k].value;
				return 1;
			}
	}
	return 0;
}
