/*
 * test_theme.c — themes: the shipped files, the parser's errors with their
 * FILE:LINE, the lookup order, the colour step-down and ui_theme_apply on
 * real terminfo entries (newterm on /dev/null, no terminal needed).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "theme.h"

static char dir[256];

/* Write text to dir/rel (creating dir/rel's directories); the full path
 * goes into path. */
static void put(const char *rel, const char *text, char *path, size_t cap)
{
	snprintf(path, cap, "%s/%s", dir, rel);
	for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')); p++) {
		*p = 0;
		mkdir(path, 0700);
		*p = '/';
	}
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
}

/*
 * Load a file holding text; expect TT_EINPUT with a message that starts
 * with "PATH:LINE: " and contains every fragment (NULL-terminated).
 */
static void expect_error(const char *what, const char *text, int line, ...)
{
	char path[512], want[600];
	ui_theme *t = (ui_theme *)1;
	tt_err err = { 0 };
	put("bad.theme", text, path, sizeof path);
	int rc = ui_theme_load(path, &t, &err);
	CHECK(rc == TT_EINPUT, "%s: rc %d, expected TT_EINPUT", what, rc);
	CHECK(t == NULL, "%s: *out not NULL on failure", what);
	snprintf(want, sizeof want, "%s:%d: ", path, line);
	CHECK(strncmp(err.msg, want, strlen(want)) == 0,
	      "%s: message '%s' does not start with '%s'", what, err.msg, want);
	va_list ap;
	va_start(ap, line);
	for (const char *frag; (frag = va_arg(ap, const char *));)
		CHECK(strstr(err.msg, frag), "%s: message '%s' lacks '%s'", what,
		      err.msg, frag);
	va_end(ap);
}

static void shipped_themes_load_and_name_every_role(void)
{
	const char *const *names = ui_theme_builtin_names();
	const char *want[] = { "default", "light", "mono", "projector" };
	int n = 0;
	while (names[n])
		n++;
	CHECK(n == 4, "%d shipped themes, expected 4", n);
	for (int i = 0; i < 4; i++) {
		int found = 0;
		for (int k = 0; k < n; k++)
			found |= strcmp(names[k], want[i]) == 0;
		CHECK(found, "shipped theme '%s' missing", want[i]);
	}
	CHECK(n > 0 && strcmp(names[0], "default") == 0,
	      "the first shipped theme (t's first step) is '%s'", n ? names[0] : "");
	for (int k = 0; k < n; k++) {
		ui_theme *t = NULL;
		tt_err err = { 0 };
		int rc = ui_theme_load(names[k], &t, &err);
		CHECK(rc == TT_OK && t, "theme %s: %s", names[k], err.msg);
		if (!t)
			continue;
		CHECK(strcmp(ui_theme_name(t), names[k]) == 0, "name '%s'",
		      ui_theme_name(t));
		for (int r = 0; r < UI_ROLES; r++) {
			ui_style st;
			CHECK(ui_theme_style(t, r, &st) == 1,
			      "theme %s does not name role %s", names[k], ui_role_name(r));
		}
		ui_theme_free(t);
	}
}

static void shipped_styles(void)
{
	ui_theme *t = NULL;
	tt_err err = { 0 };
	ui_style st;
	CHECK(ui_theme_load("mono", &t, &err) == TT_OK, "%s", err.msg);
	if (t) {
		/* mono has no colour at all, and a loud paused row */
		for (int r = 0; r < UI_ROLES; r++) {
			ui_theme_style(t, r, &st);
			CHECK(st.fg == -1 && st.bg == -1, "mono %s has a colour",
			      ui_role_name(r));
		}
		ui_theme_style(t, UI_STATE_PAUSED, &st);
		CHECK((st.attrs & (A_REVERSE | A_BOLD)) == (A_REVERSE | A_BOLD),
		      "mono state.paused attrs %#lx", (unsigned long)st.attrs);
		ui_theme_style(t, UI_SELECTED, &st);
		CHECK(st.attrs & A_REVERSE, "mono table.selected not reverse");
		ui_theme_free(t);
	}
	t = NULL;
	CHECK(ui_theme_load("default", &t, &err) == TT_OK, "%s", err.msg);
	if (t) {
		ui_theme_style(t, UI_TITLE, &st);
		CHECK(st.fg == 0 && st.bg == 39 && st.attrs == A_BOLD,
		      "default title fg %d bg %d attrs %#lx", st.fg, st.bg,
		      (unsigned long)st.attrs);
		CHECK(ui_attr(t, UI_STATE_PAUSED) & A_BOLD,
		      "ui_attr before ui_theme_apply lacks the theme's bold");
		ui_theme_free(t);
	}
}

static void role_names_round_trip(void)
{
	for (int r = 0; r < UI_ROLES; r++) {
		const char *n = ui_role_name(r);
		CHECK(n && *n, "role %d has no name", r);
		if (!n)
			continue;
		CHECK(ui_role_find(n) == r, "ui_role_find(%s) = %d, expected %d", n,
		      ui_role_find(n), r);
		for (int q = 0; q < r; q++)
			CHECK(strcmp(n, ui_role_name(q)) != 0, "%s named twice", n);
	}
	CHECK(ui_role_find("state.killed") == UI_STATE_KILLED, "state.killed");
	CHECK(ui_role_find("plot.curve6") == UI_CURVE6, "plot.curve6");
	CHECK(ui_role_find("error") == UI_ERROR, "error");
	CHECK(ui_role_find("nope") == -1, "nope found");
	CHECK(ui_role_find("") == -1, "empty name found");
	CHECK(ui_role_find("State.Killed") == -1, "role names are lower case");
}

static void errors_name_file_line_token_expected(void)
{
	expect_error("bad colour", "# a theme\n\nstate.killed = fg=redd,bold\n", 3,
	             "state.killed: unknown colour 'redd', expected default, black",
	             "colour0..colour255", NULL);
	expect_error("colour out of range", "normal = none\ntitle = bg=colour256\n", 2,
	             "title: unknown colour 'colour256'", NULL);
	expect_error("bad bg", "normal = fg=red, bg=blu\n", 1,
	             "normal: unknown colour 'blu'", NULL);
	expect_error("bad attribute", "normal = none\n\n\n\nerror = fg=red,blod\n", 5,
	             "error: unknown attribute 'blod', expected bold, dim, underline",
	             "fg=COLOUR", NULL);
	expect_error("bad key", "normal = fgg=red\n", 1,
	             "normal: unknown style key 'fgg', expected fg or bg", NULL);
	expect_error("unknown role, similar ones listed", "normal = none\nstate.kild = bold\n",
	             2, "unknown role 'state.kild', expected one of state.queued",
	             "state.killed", "state.failed", NULL);
	expect_error("unknown role", "frobnicate = bold\n", 1,
	             "unknown role 'frobnicate', expected a role listed under THEMES",
	             NULL);
	expect_error("missing =", "normal = none\n# x\nstate.killed bold\n", 3,
	             "missing '='", "expected 'ROLE = STYLE'", "'state.killed bold'", NULL);
	expect_error("missing = before a style key", "state.killed fg=red\n", 1,
	             "missing '='", "'state.killed fg=red'", NULL);
	expect_error("missing role", "= bold\n", 1, "missing role", NULL);
	expect_error("empty style", "normal = none\ntitle =   # nothing\n", 2,
	             "title: empty style", NULL);
	expect_error("empty item", "title = bold,,dim\n", 1, "title: empty item", NULL);
	expect_error("set twice", "normal = none\ntitle = bold\ntitle = dim\n", 3,
	             "title: set twice, first on line 2", NULL);
	expect_error("control characters replaced", "normal = fg=\033[31m\n", 1,
	             "unknown colour '?[31m'", NULL);
}

static void good_syntax_variants(void)
{
	char path[512];
	ui_theme *t = NULL;
	tt_err err = { 0 };
	ui_style st;
	put("ok.theme", "# comment\r\n\r\n  title\t=  fg=Colour17 , BG=color255 , "
	    "Bold,underline  # trailing\r\nnormal = bold,none,dim\n"
	    "error = fg=brightwhite,bg=default,italics,standout,reverse", path,
	    sizeof path);
	CHECK(ui_theme_load(path, &t, &err) == TT_OK, "%s", err.msg);
	if (!t)
		return;
	CHECK(ui_theme_style(t, UI_TITLE, &st) == 1, "title not named");
	CHECK(st.fg == 17 && st.bg == 255 && st.attrs == (A_BOLD | A_UNDERLINE),
	      "title fg %d bg %d attrs %#lx", st.fg, st.bg, (unsigned long)st.attrs);
	ui_theme_style(t, UI_NORMAL, &st);
	CHECK(st.attrs == A_DIM, "'none' resets: attrs %#lx", (unsigned long)st.attrs);
	ui_theme_style(t, UI_ERROR, &st);
	CHECK(st.fg == 15 && st.bg == -1 &&
	      st.attrs == (A_ITALIC | A_STANDOUT | A_REVERSE),
	      "error fg %d bg %d attrs %#lx", st.fg, st.bg, (unsigned long)st.attrs);
	/* a role the file leaves out keeps the default theme's style */
	ui_style d;
	CHECK(ui_theme_style(t, UI_STATE_PAUSED, &st) == 0, "paused named");
	ui_theme *def = NULL;
	CHECK(ui_theme_load("default", &def, &err) == TT_OK, "%s", err.msg);
	if (def) {
		ui_theme_style(def, UI_STATE_PAUSED, &d);
		CHECK(st.fg == d.fg && st.bg == d.bg && st.attrs == d.attrs,
		      "unnamed role differs from the default theme");
		ui_theme_free(def);
	}
	ui_theme_free(t);
}

static void missing_theme_lists_places(void)
{
	char xdg[300], want[400];
	ui_theme *t = NULL;
	tt_err err = { 0 };
	snprintf(xdg, sizeof xdg, "%s/cfg", dir);
	setenv("XDG_CONFIG_HOME", xdg, 1);
	int rc = ui_theme_load("nosuch", &t, &err);
	CHECK(rc == TT_EINPUT && !t, "rc %d", rc);
	snprintf(want, sizeof want, "%s/tunetop/themes/nosuch.theme", xdg);
	CHECK(strstr(err.msg, "theme 'nosuch' not found"), "%s", err.msg);
	CHECK(strstr(err.msg, want), "'%s' lacks '%s'", err.msg, want);
	CHECK(strstr(err.msg, "default, light, mono, projector"), "%s", err.msg);

	/* without XDG_CONFIG_HOME: ~/.config */
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	unsetenv("XDG_CONFIG_HOME");
	setenv("HOME", dir, 1);
	rc = ui_theme_load("nosuch", &t, &err);
	snprintf(want, sizeof want, "%s/.config/tunetop/themes/nosuch.theme", dir);
	CHECK(rc == TT_EINPUT && strstr(err.msg, want), "'%s' lacks '%s'", err.msg, want);
	if (home) {
		setenv("HOME", home, 1);
		free(home);
	}

	/* a path names the file itself */
	char path[512];
	snprintf(path, sizeof path, "%s/none/x.theme", dir);
	rc = ui_theme_load(path, &t, &err);
	CHECK(rc == TT_EINPUT && strstr(err.msg, path) &&
	      strstr(err.msg, "No such file"), "rc %d: %s", rc, err.msg);
	rc = ui_theme_load("", &t, &err);
	CHECK(rc == TT_EINPUT && strstr(err.msg, "empty theme name"), "%s", err.msg);
}

static void user_themes_override_shipped(void)
{
	char path[512], xdg[300];
	ui_theme *t = NULL;
	tt_err err = { 0 };
	ui_style st;
	snprintf(xdg, sizeof xdg, "%s/cfg", dir);
	setenv("XDG_CONFIG_HOME", xdg, 1);
	put("cfg/tunetop/themes/default.theme", "state.killed = fg=colour17,dim\n",
	    path, sizeof path);
	CHECK(ui_theme_load("default", &t, &err) == TT_OK, "%s", err.msg);
	if (t) {
		CHECK(ui_theme_style(t, UI_STATE_KILLED, &st) == 1 && st.fg == 17 &&
		      st.attrs == A_DIM, "user default.theme not used: fg %d", st.fg);
		CHECK(ui_theme_style(t, UI_TITLE, &st) == 0 && st.bg == 39,
		      "title should come from the shipped default (bg %d)", st.bg);
		ui_theme_free(t);
		t = NULL;
	}
	/* an error in the user's file names the user's file */
	put("cfg/tunetop/themes/mine.theme", "normal = none\nnormal = bold\n", path,
	    sizeof path);
	int rc = ui_theme_load("mine", &t, &err);
	char want[600];
	snprintf(want, sizeof want, "%s:2: normal: set twice", path);
	CHECK(rc == TT_EINPUT && strncmp(err.msg, want, strlen(want)) == 0,
	      "'%s', expected '%s'", err.msg, want);
	/* a shipped name the user has no file for is still found */
	rc = ui_theme_load("projector", &t, &err);
	CHECK(rc == TT_OK && t, "%s", err.msg);
	ui_theme_free(t);
	/* a relative XDG_CONFIG_HOME is ignored (the XDG spec) */
	setenv("XDG_CONFIG_HOME", "cfg", 1);
	setenv("HOME", "/nonexistent-home", 1);
	t = NULL;
	rc = ui_theme_load("mine", &t, &err);
	CHECK(rc == TT_EINPUT && strstr(err.msg, "/nonexistent-home/.config"),
	      "%s", err.msg);
	unsetenv("XDG_CONFIG_HOME");
}

static void colour_step_down(void)
{
	static const struct { int c, colours, want; } cases[] = {
		{ 196, 16, 9 },   /* ff0000 -> bright red */
		{ 46, 16, 10 },   /* 00ff00 -> bright green */
		{ 21, 16, 4 },    /* 0000ff -> blue (0000ee) */
		{ 16, 16, 0 },    /* black */
		{ 231, 16, 15 },  /* white */
		{ 244, 16, 8 },   /* grey 808080 -> bright black */
		{ 250, 16, 7 },   /* grey bcbcbc -> white (e5e5e5) */
		{ 232, 16, 0 },   /* grey 080808 -> black */
		{ 39, 16, 6 },    /* 00afff -> cyan */
		{ 226, 16, 11 },  /* ffff00 -> bright yellow */
		{ 196, 8, 1 },    /* bright red on 8 colours: red */
		{ 12, 8, 4 },     /* bright blue on 8 colours: blue */
		{ 5, 16, 5 },     /* basic colours pass */
		{ 200, 256, 200 },
		{ -1, 256, -1 },  /* the terminal's default stays */
		{ 3, 0, -1 },     /* no colour */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int got = ui_colour_step(cases[i].c, cases[i].colours);
		CHECK(got == cases[i].want, "colour%d on %d colours: %d, expected %d",
		      cases[i].c, cases[i].colours, got, cases[i].want);
	}
	/* every colour lands in range */
	for (int c = 0; c < 256; c++) {
		int g16 = ui_colour_step(c, 16), g8 = ui_colour_step(c, 8);
		CHECK(g16 >= 0 && g16 < 16 && g8 >= 0 && g8 < 8, "colour%d: %d %d",
		      c, g16, g8);
	}
}

static void resolve_per_terminal(void)
{
	ui_theme *t = NULL;
	tt_err err = { 0 };
	ui_style st;
	CHECK(ui_theme_load("default", &t, &err) == TT_OK, "%s", err.msg);
	if (!t)
		return;
	ui_theme_resolve(t, UI_TITLE, 256, &st);
	CHECK(st.fg == 0 && st.bg == 39 && st.attrs == A_BOLD, "256: %d %d", st.fg, st.bg);
	ui_theme_resolve(t, UI_TITLE, 16, &st);
	CHECK(st.fg == 0 && st.bg == 6 && st.attrs == A_BOLD, "16: %d %d", st.fg, st.bg);
	ui_theme_resolve(t, UI_ERROR, 8, &st);
	CHECK(st.fg == 7 && st.bg == 1, "8: error %d %d", st.fg, st.bg);
	/* no colour: the cursor row (colour alone) becomes reverse, a paused
	 * row (black on yellow, bold) reverse and bold, a killed one (red)
	 * takes mono's dim italics */
	ui_theme_resolve(t, UI_SELECTED, 0, &st);
	CHECK(st.fg == -1 && st.bg == -1 && st.attrs == A_REVERSE,
	      "no colour: selected fg %d bg %d attrs %#lx", st.fg, st.bg,
	      (unsigned long)st.attrs);
	ui_theme_resolve(t, UI_STATE_PAUSED, 0, &st);
	CHECK(st.attrs == (A_REVERSE | A_BOLD), "no colour: paused %#lx",
	      (unsigned long)st.attrs);
	ui_theme_resolve(t, UI_STATE_KILLED, 0, &st);
	CHECK(st.attrs == (A_DIM | A_ITALIC), "no colour: killed %#lx",
	      (unsigned long)st.attrs);
	ui_theme_resolve(t, UI_NORMAL, 0, &st);
	CHECK(st.attrs == 0, "no colour: normal %#lx", (unsigned long)st.attrs);
	/* every role that had emphasis in colour keeps some without */
	for (int r = 0; r < UI_ROLES; r++) {
		ui_style a;
		ui_theme_style(t, r, &a);
		ui_theme_resolve(t, r, 0, &st);
		if (r != UI_NORMAL && r != UI_CURVE2 && r != UI_CURVE3 &&
		    r != UI_CURVE4 && r != UI_CURVE5 && r != UI_CURVE6 &&
		    r != UI_MEM_GRADS && r != UI_STATE_DONE && r != UI_GATE_HIGH)
			CHECK(st.attrs != 0, "no colour: %s has no emphasis left",
			      ui_role_name(r));
	}
	ui_theme_free(t);

	/* two colours stepping down onto one: the text stays readable */
	char path[512];
	put("clash.theme", "normal = fg=colour236,bg=black\n"
	    "title = fg=colour227,bg=brightyellow\n", path, sizeof path);
	CHECK(ui_theme_load(path, &t, &err) == TT_OK, "%s", err.msg);
	if (t) {
		ui_theme_resolve(t, UI_NORMAL, 16, &st);
		CHECK(st.bg == 0 && st.fg == 7, "grey on black: fg %d bg %d", st.fg, st.bg);
		ui_theme_resolve(t, UI_NORMAL, 256, &st);
		CHECK(st.fg == 236 && st.bg == 0, "256: fg %d bg %d", st.fg, st.bg);
		ui_theme_resolve(t, UI_TITLE, 16, &st);
		CHECK(st.bg == 11 && st.fg == 0, "pale yellow on yellow: fg %d bg %d",
		      st.fg, st.bg);
		ui_theme_free(t);
	}
}

/* ui_theme_apply on a real terminfo entry; out is /dev/null. */
static void apply_on(const char *term, int no_color, int *colours,
                     attr_t attr[UI_ROLES], short fgbg[2])
{
	FILE *out = fopen("/dev/null", "w"), *in = fopen("/dev/null", "r");
	SCREEN *s = out && in ? newterm(term, out, in) : NULL;
	*colours = -1;
	CHECK(s, "newterm(%s) failed: terminfo entry missing?", term);
	if (s) {
		ui_theme *t = NULL;
		tt_err err = { 0 };
		if (no_color)
			setenv("NO_COLOR", "1", 1);
		else
			unsetenv("NO_COLOR");
		CHECK(ui_theme_load("default", &t, &err) == TT_OK, "%s", err.msg);
		if (t) {
			ui_theme_apply(t);
			*colours = has_colors() && !no_color ? COLORS : 0;
			for (int r = 0; r < UI_ROLES; r++)
				attr[r] = ui_attr(t, r);
			short pair = (short)PAIR_NUMBER(attr[UI_TITLE]);
			fgbg[0] = fgbg[1] = -2;
			if (pair)
				pair_content(pair, &fgbg[0], &fgbg[1]);
			ui_theme_free(t);
		}
		endwin();
		delscreen(s);
		unsetenv("NO_COLOR");
	}
	if (out)
		fclose(out);
	if (in)
		fclose(in);
}

static void apply_on_terminals(void)
{
	attr_t a[UI_ROLES];
	short fb[2];
	int colours;

	apply_on("xterm-256color", 0, &colours, a, fb);
	CHECK(colours == 256, "xterm-256color: %d colours", colours);
	CHECK(PAIR_NUMBER(a[UI_TITLE]) != 0 && fb[0] == 0 && fb[1] == 39,
	      "256: title pair %d = (%d, %d), expected (0, 39)",
	      (int)PAIR_NUMBER(a[UI_TITLE]), fb[0], fb[1]);
	CHECK(a[UI_TITLE] & A_BOLD, "256: title lost bold");
	CHECK(PAIR_NUMBER(a[UI_NORMAL]) == 0, "normal (default colours) has a pair");

	apply_on("xterm", 0, &colours, a, fb);
	CHECK(colours == 8, "xterm: %d colours", colours);
	CHECK(fb[0] == 0 && fb[1] == 6, "8: title (%d, %d), expected (0, 6)",
	      fb[0], fb[1]);

	apply_on("xterm-256color", 1, &colours, a, fb);
	for (int r = 0; r < UI_ROLES; r++)
		CHECK(PAIR_NUMBER(a[r]) == 0, "NO_COLOR: %s has colour pair %d",
		      ui_role_name(r), (int)PAIR_NUMBER(a[r]));
	CHECK(a[UI_SELECTED] == A_REVERSE, "NO_COLOR: selected %#lx",
	      (unsigned long)a[UI_SELECTED]);

	apply_on("vt100", 0, &colours, a, fb);
	CHECK(colours == 0, "vt100: %d colours", colours);
	CHECK(PAIR_NUMBER(a[UI_STATE_KILLED]) == 0 &&
	      (a[UI_STATE_KILLED] & A_DIM), "vt100: killed %#lx",
	      (unsigned long)a[UI_STATE_KILLED]);
}

/* Read a whole file into a NUL-terminated buffer (NULL if unreadable). */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(1 << 20);
	size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	fclose(f);
	if (buf)
		buf[n] = 0;
	return buf;
}

/* Every role is documented: in the THEMES section of the man page and in
 * default.theme's comment block (run from the repository root, as
 * tests/run.sh does). */
static void every_role_documented(void)
{
	char *man = slurp("man/tunetop.1"), *def = slurp("themes/default.theme");
	CHECK(man && def, "man/tunetop.1 or themes/default.theme unreadable: "
	      "run from the repository root");
	if (man && def) {
		char *sec = strstr(man, "\n.SH THEMES\n");
		char *end = sec ? strstr(sec + 1, "\n.SH ") : NULL;
		CHECK(sec, "man/tunetop.1 has no THEMES section");
		if (end)
			*end = 0;
		for (int r = 0; sec && r < UI_ROLES; r++) {
			char want[80];
			snprintf(want, sizeof want, "\n.B %s\n", ui_role_name(r));
			CHECK(strstr(sec, want), "THEMES in man/tunetop.1 lacks role %s",
			      ui_role_name(r));
			snprintf(want, sizeof want, "\n#   %s ", ui_role_name(r));
			CHECK(strstr(def, want), "default.theme's role list lacks %s",
			      ui_role_name(r));
		}
	}
	free(man);
	free(def);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/tt-theme-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror(dir);
		return 1;
	}
	TT_RUN(shipped_themes_load_and_name_every_role);
	TT_RUN(shipped_styles);
	TT_RUN(role_names_round_trip);
	TT_RUN(errors_name_file_line_token_expected);
	TT_RUN(good_syntax_variants);
	TT_RUN(missing_theme_lists_places);
	TT_RUN(user_themes_override_shipped);
	TT_RUN(colour_step_down);
	TT_RUN(resolve_per_terminal);
	TT_RUN(apply_on_terminals);
	TT_RUN(every_role_documented);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	TT_EXIT();
}
