/* sutra-jinja-private.h: internals shared by the sutra-jinja*.c files (lexer, parser, values,
 * evaluator, filters, Python string methods). Not a public header.
 *
 * Memory: every object made while parsing lives in the template's arena; every value made
 * while rendering lives in the render's arena, freed in one go when the render ends. Values
 * are immutable except namespaces, so they are shared freely without reference counts.
 * Errors: parser and evaluator stop with jn_fail(), which longjmps to the entry point; that
 * is safe because nothing outside the arena is allocated in between. */
#pragma once
#include "sutra-jinja.h"

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- arena + error unwinding ------------------------------------------------------------ */
typedef struct JnChunk JnChunk;
typedef struct {
  JnChunk *head;
  size_t total;        /* bytes handed out so far */
  size_t limit;        /* jn_alloc fails beyond this */
  jmp_buf jb;          /* where jn_fail lands */
  SutraStatus code;    /* set by jn_fail */
  char msg[SUTRA_ERROR_MESSAGE_MAX];
  int line;            /* template line of the failure, 0 = none */
  int cur_line;        /* line being evaluated (used when a helper fails without one) */
  bool raised;         /* raise_exception(): msg is the template's own message */
} JnRun;

void *jn_alloc   (JnRun *r, size_t n);                        /* zeroed, max_align_t aligned */
char *jn_strndup (JnRun *r, const char *s, size_t n);         /* NUL-terminated copy */
void  jn_arena_free (JnRun *r);
_Noreturn void jn_fail (JnRun *r, SutraStatus code, int line, const char *fmt, ...)
  __attribute__ ((format (printf, 4, 5)));

/* ---- values ------------------------------------------------------------------------------ */
typedef enum {
  JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT,
  JV_NS,    /* namespace(): the only mutable object */
  JV_LOOP,  /* the `loop` variable of a for statement */
  JV_FUNC,  /* globals, bound methods, macros, caller, loop helpers */
} JvType;

typedef struct JStr JStr;
typedef struct JList JList;
typedef struct JDict JDict;
typedef struct JNs JNs;
typedef struct JLoop JLoop;
typedef struct JFunc JFunc;
typedef struct JUndef JUndef;

typedef struct {
  uint8_t t;             /* JvType */
  uint8_t markup;        /* JV_STR: a markupsafe.Markup (from |safe, |escape): concatenating a
                            plain string to it HTML-escapes that string, as in Python */
  union {
    bool b;
    int64_t i;
    double f;
    JStr *s;
    JList *l;
    JDict *d;
    JNs *ns;
    JLoop *loop;
    JFunc *fn;
    JUndef *u;           /* may be NULL: plain undefined without a name */
  } v;
} JVal;

struct JStr {
  size_t len;            /* bytes, valid UTF-8 */
  int64_t ncp;           /* code points, -1 = not counted yet */
  char data[];           /* NUL-terminated */
};
/* Sequence kinds. Jinja's select/map/unique/items/batch filters return Python generators
 * (always true, no len(), consumed by one pass), reverse an iterator, dict.items() a view,
 * range() a range: each keeps those behaviours here so templates render as with jinja2. */
typedef enum { LK_PLAIN, LK_RANGE, LK_GEN, LK_ITER, LK_VIEW } JListKind;
struct JList {
  size_t n;
  bool tuple;            /* prints as (a, b) */
  uint8_t kind;          /* JListKind */
  size_t pos;            /* LK_GEN / LK_ITER: items before pos are consumed */
  const char *name;      /* type name of non-plain kinds: "generator", "dict_items" ... */
  const char *func;      /* LK_GEN: the generator function's name (printing) */
  const char *lazy_error;/* LK_GEN: raised when iterated (Jinja's items() of a non-mapping) */
  int64_t rstart, rstop, rstep;   /* LK_RANGE */
  JVal *items;
};
struct JDict {
  size_t n, cap;
  JVal *keys, *vals;     /* insertion order, as Python dicts */
};
struct JNs {
  JDict *attrs;
};
/* Why a value is undefined; the message is built only when an operation fails on it. */
typedef enum { JU_NAME, JU_ATTR, JU_HINT } JuKind;
struct JUndef {
  JuKind kind;
  const char *name;      /* JU_NAME: the variable; JU_HINT: the full message */
  JVal obj, key;         /* JU_ATTR: the container and the missing attribute/item */
  bool security;         /* an unsafe attribute: a SecurityError rather than UndefinedError */
};

/* Constructors (all arena-allocated). */
static inline JVal jv_undef (void) { JVal v = { .t = JV_UNDEF }; return v; }
static inline JVal jv_none (void) { JVal v = { .t = JV_NONE }; return v; }
static inline JVal jv_bool (bool b) { JVal v = { .t = JV_BOOL, .v.b = b }; return v; }
static inline JVal jv_int (int64_t i) { JVal v = { .t = JV_INT, .v.i = i }; return v; }
static inline JVal jv_float (double f) { JVal v = { .t = JV_FLOAT, .v.f = f }; return v; }
JVal   jv_str      (JnRun *r, const char *s, size_t n);       /* copies; s must be valid UTF-8 */
static inline JVal jv_as_markup (JVal v, bool markup) { v.markup = markup; return v; }
/* markupsafe.escape(str): & < > " ' as &amp; &lt; &gt; &#34; &#39; (a plain string). */
JStr  *jn_html_escape (JnRun *r, const JStr *s);
JVal   jv_cstr     (JnRun *r, const char *s);
JStr  *jstr_new    (JnRun *r, size_t n);                      /* uninitialised data[n], NUL set */
JVal   jv_list     (JnRun *r, size_t n, bool tuple);          /* n items set to undefined */
/* The same items as a generator / iterator / view value (a new header sharing items). */
JVal   jv_list_as  (JnRun *r, JVal list, JListKind kind, const char *name);
JVal   jv_range    (JnRun *r, int64_t start, int64_t stop, int64_t step, size_t n);
JVal   jv_dict     (JnRun *r);
JVal   jv_undef_name (JnRun *r, const char *name);
JVal   jv_undef_attr (JnRun *r, JVal obj, JVal key);
JVal   jv_undef_hint (JnRun *r, const char *hint, bool security);

/* Dicts: Python equality on keys (1 == 1.0 == True). */
JVal  *jdict_get   (const JDict *d, JVal key);                /* NULL when absent */
void   jdict_set   (JnRun *r, JDict *d, JVal key, JVal val);
JVal  *jdict_get_str (const JDict *d, const char *key);

/* Python semantics. */
bool        jv_truthy     (JVal v);
const char *jv_type_name  (JVal v);                           /* "str", "int", "NoneType", ... */
bool        jv_equal      (JnRun *r, JVal a, JVal b);          /* Python == */
/* Python a <op> b for OP_LT/LE/GT/GE (fails with a TypeError message when unorderable). */
bool        jv_cmp        (JnRun *r, int op, JVal a, JVal b, int line);
/* The message an operation on this undefined value raises ("'x' is undefined"). */
void        jv_undef_message (JVal u, char *buf, size_t size);
bool        jv_hashable   (JVal v);
int64_t     jstr_ncp      (JStr *s);                          /* code points, cached */
/* str(v) and repr(v) appended to a growing buffer. */
typedef struct {
  JnRun *r;
  char *p;
  size_t n, cap;
  size_t max;            /* fail when n would exceed this (render output limit) */
} JBuf;
void  jbuf_init    (JBuf *b, JnRun *r, size_t max);
void  jbuf_add     (JBuf *b, const char *s, size_t n);
void  jbuf_addc    (JBuf *b, char c);
void  jbuf_addf    (JBuf *b, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
void  jbuf_add_cp  (JBuf *b, uint32_t cp);
JVal  jbuf_to_str  (JBuf *b);
void  jv_str_into  (JBuf *b, JVal v);                          /* str(v) */
void  jv_repr_into (JBuf *b, JVal v, int depth);               /* repr(v) */
JVal  jv_to_str    (JnRun *r, JVal v);                         /* str(v) as a string value */
void  jv_float_repr (double f, char out[32]);                  /* Python repr(float) */
/* json.dumps(v, ensure_ascii, indent, separators, sort_keys) as transformers' tojson. */
typedef struct {
  bool ensure_ascii;
  bool sort_keys;
  const char *indent;    /* NULL = single line */
  const char *item_sep, *key_sep;
} JJsonOpts;
void  jv_json_into (JBuf *b, JVal v, const JJsonOpts *o, int depth, int line);
/* json-c object -> value (strings sanitised to valid UTF-8). */
struct json_object;
JVal  jv_from_json (JnRun *r, const struct json_object *o, int depth);

/* ---- UTF-8 and Python string helpers (sutra-jinja-pystr.c) ------------------------------ */
uint32_t jn_utf8_next   (const char *s, size_t n, size_t *i);  /* decodes one code point */
size_t   jn_utf8_put    (char *out, uint32_t cp);              /* 1..4 bytes */
bool     jn_utf8_valid  (const char *s, size_t n, size_t *bad_at);
/* Copy with invalid sequences replaced by U+FFFD (Python errors="replace"). */
char    *jn_utf8_sanitize (JnRun *r, const char *s, size_t n, size_t *out_n);
bool     jn_py_isspace  (uint32_t cp);                         /* str.isspace */
size_t   jn_cp_offset   (JStr *s, int64_t cp_index);           /* byte offset of a code point */
JVal     jn_str_upper   (JnRun *r, JStr *s);
JVal     jn_str_lower   (JnRun *r, JStr *s);
JVal     jn_str_title   (JnRun *r, JStr *s);                   /* Python str.title */
JVal     jn_str_capitalize (JnRun *r, JStr *s);                /* Python str.capitalize */
JVal     jn_str_swapcase (JnRun *r, JStr *s);
JVal     jn_str_strip   (JnRun *r, JStr *s, JVal chars, bool left, bool right, int line);
JVal     jn_str_split   (JnRun *r, JStr *s, JVal sep, int64_t maxsplit, bool from_right, int line);
JVal     jn_str_splitlines (JnRun *r, JStr *s, bool keepends);
JVal     jn_str_replace (JnRun *r, JStr *s, JStr *old, JStr *rep, int64_t count);
int64_t  jn_str_find    (JStr *s, JStr *sub, bool from_right); /* code point index or -1 */
int64_t  jn_str_count   (JStr *s, JStr *sub);
/* s[start::step] taking count code points (indices already adjusted as PySlice does). */
JVal     jn_str_slice   (JnRun *r, JStr *s, int64_t start, int64_t step, int64_t count);
JVal     jn_str_char_at (JnRun *r, JStr *s, int64_t i);        /* undefined-free: i in range */
bool     jn_str_is      (JStr *s, const char *what);           /* isalpha, isdigit, ... */
/* Python float(s) / int(s, base); false when Python raises ValueError. */
bool     jn_parse_py_float (JStr *s, double *out);
bool     jn_parse_py_int   (JStr *s, int base, int64_t *out);

/* ---- template AST -------------------------------------------------------------------------- */
typedef enum {
  /* expressions */
  N_CONST, N_NAME, N_GETATTR, N_GETITEM, N_SLICE, N_BINOP, N_NEG, N_POS, N_NOT, N_AND, N_OR,
  N_COMPARE, N_COND, N_FILTER, N_TEST, N_CALL, N_LIST, N_TUPLE, N_DICT, N_CONCAT,
  /* assignment targets */
  N_NSREF,
  /* statements */
  N_OUTPUT, N_DATA, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_CALLBLOCK, N_FILTERBLOCK,
  N_WITH, N_BREAK, N_CONTINUE, N_GENERATION,
} JnNodeKind;

typedef enum {
  OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW,
  OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN,
} JnOp;

typedef struct JnNode JnNode;
typedef struct {
  size_t n;
  JnNode **v;
} JnNodes;

/* Call arguments: positionals, keywords, *args, **kwargs. */
typedef struct {
  JnNodes args;
  size_t nkw;
  const char **kw_names;
  JnNode **kw_vals;
  JnNode *dyn_args, *dyn_kwargs;
} JnArgs;

struct JnNode {
  uint8_t kind;          /* JnNodeKind */
  int line;
  union {
    JVal cval;                                                    /* N_CONST */
    const char *name;                                             /* N_NAME */
    struct { JnNode *obj; const char *attr; } ga;                 /* N_GETATTR */
    struct { JnNode *obj, *idx; } gi;                             /* N_GETITEM */
    struct { JnNode *start, *stop, *step; } sl;                   /* N_SLICE */
    struct { JnOp op; JnNode *a, *b; } bin;                       /* N_BINOP, N_AND, N_OR */
    JnNode *un;                                                   /* N_NEG, N_POS, N_NOT */
    struct { JnNode *first; size_t n; JnOp *ops; JnNode **rhs; } cmp; /* N_COMPARE */
    struct { JnNode *test, *a, *b; } cond;                        /* N_COND (b may be NULL) */
    struct { JnNode *obj; const char *name; int id; JnArgs a; bool negated, unsupported; } flt;
                                   /* N_FILTER/N_TEST; id < 0: unknown (or Jinja's but not ours) */
    struct { JnNode *fn; JnArgs a; } call;                        /* N_CALL */
    JnNodes items;                                                /* N_LIST, N_TUPLE, N_CONCAT */
    struct { JnNodes keys, vals; } dict;                          /* N_DICT */
    struct { const char *ns, *attr; } nsref;                      /* N_NSREF */
    JnNodes body;                                                 /* N_OUTPUT, N_GENERATION */
    struct { const char *text; size_t len; } data;                /* N_DATA */
    struct { JnNode *test; JnNodes body, else_body; } if_;        /* N_IF (elif = nested if) */
    struct { JnNode *target, *iter, *filter; JnNodes body, else_body; bool recursive; } for_;
    struct { JnNode *target, *value; } set;                       /* N_SET */
    struct { JnNode *target; JnNodes filters; JnNodes body; } setblock; /* filters: N_FILTER, obj NULL */
    struct { const char *name; size_t nparams; const char **params; JnNode **defaults;
             JnNodes body; bool uses_varargs, uses_kwargs, uses_caller; } macro;
    struct { JnNode *call; size_t nparams; const char **params; JnNode **defaults;
             JnNodes body; bool uses_varargs, uses_kwargs, uses_caller; } callblock;
    struct { JnNodes filters; JnNodes body; } filterblock;
    struct { JnNodes targets, values; JnNodes body; } with;
  } u;
};

struct SutraJinjaTemplate {
  JnRun run;             /* owns the AST arena */
  JnNodes body;
};

/* ---- lexer (sutra-jinja-lex.c) -------------------------------------------------------------- */
typedef enum {
  T_EOF, T_DATA, T_VAR_BEGIN, T_VAR_END, T_BLOCK_BEGIN, T_BLOCK_END, T_RAW_DATA,
  T_NAME, T_STRING, T_INT, T_FLOAT, T_OP,
} JnTokKind;

typedef struct {
  uint8_t kind;          /* JnTokKind */
  int line;
  const char *s;         /* T_DATA/T_RAW_DATA/T_NAME/T_STRING: text (decoded for strings); T_OP: "==" */
  size_t len;
  int64_t i;             /* T_INT */
  double f;              /* T_FLOAT */
} JnTok;

typedef struct {
  JnTok *v;
  size_t n, cap;
} JnToks;

/* Tokenizes src with trim_blocks, lstrip_blocks, keep_trailing_newline=False. */
void jn_lex (JnRun *r, const char *src, size_t len, JnToks *out);

/* ---- parser / evaluator / builtins --------------------------------------------------------- */
void jn_parse (SutraJinjaTemplate *t, const JnToks *toks);
/* Jinja 3's compile-time check: an unknown filter or test is an error, except inside an `if`
 * statement or a conditional expression ("soft" frames), where it fails only when executed. */
void jn_check_tree (JnRun *r, const JnNodes *body);

/* Filters and tests are looked up at parse time (unknown names are template errors, as in
 * Jinja's compiler); ids index the tables in sutra-jinja-filters.c. */
int  jn_filter_id (const char *name, bool *known_but_unsupported);
int  jn_test_id   (const char *name, bool *known_but_unsupported);

typedef struct JnCtx JnCtx;
/* Evaluated call arguments. */
typedef struct {
  size_t n;
  JVal *v;
  size_t nkw;
  const char **kw;
  JVal *kwv;
} JnCallArgs;
JVal jn_apply_filter (JnCtx *c, int id, JVal x, const JnCallArgs *a, int line);
bool jn_apply_test   (JnCtx *c, int id, JVal x, const JnCallArgs *a, int line);
/* A method of str/dict/list, or NULL when the type has none of that name. */
bool jn_has_method   (JVal self, const char *name, bool *unsafe);
JVal jn_call_method  (JnCtx *c, JVal self, const char *name, const JnCallArgs *a, int line);

/* Evaluator services used by filters (sutra-jinja-eval.c). */
JnRun *jn_ctx_run    (JnCtx *c);
JVal   jn_getattr    (JnCtx *c, JVal obj, const char *name, int line);
JVal   jn_getitem    (JnCtx *c, JVal obj, JVal key, int line);
JVal   jn_call_value (JnCtx *c, JVal fn, const JnCallArgs *a, int line);
_Noreturn void jn_fail_undefined (JnCtx *c, JVal u, int line);
void   jn_check_defined (JnCtx *c, JVal v, int line);          /* fails on undefined */
/* Materialises iter(v) as a list (str -> chars, dict -> keys, undefined -> empty). */
JList *jn_iterate    (JnCtx *c, JVal v, int line);
int64_t jn_len       (JnCtx *c, JVal v, int line);
void   jn_step       (JnCtx *c, size_t cost, int line);        /* counts work against the limit */
JVal   jn_binop      (JnCtx *c, JnOp op, JVal a, JVal b, int line);
size_t jn_max_output (JnCtx *c);

/* ---- evaluator internals (sutra-jinja-eval.c, -access.c, -call.c) ------------------------- */
typedef struct Scope Scope;
struct Scope {
  Scope *parent;
  size_t n, cap;
  const char **names;
  JVal *vals;
};

typedef enum {
  FN_RANGE, FN_DICT, FN_NAMESPACE, FN_RAISE, FN_STRFTIME, FN_JOINER, FN_CYCLER, FN_LIPSUM,
  FN_METHOD,       /* self.name(...) */
  FN_MACRO, FN_CALLER, FN_LOOP_CYCLE, FN_LOOP_CHANGED, FN_JOINER_INST,
  FN_UNSAFE,       /* a sandboxed attribute: calling it is a SecurityError */
} FnKind;

struct JFunc {
  FnKind kind;
  const char *name;          /* FN_METHOD: method name; FN_MACRO: macro name */
  JVal self;                 /* FN_METHOD: the bound object */
  const JnNode *node;        /* FN_MACRO / FN_CALLER */
  Scope *closure;
  JLoop *loop;               /* FN_LOOP* */
  const char *sep;           /* FN_JOINER_INST */
  bool used;                 /* FN_JOINER_INST */
};

struct JLoop {
  JList *items;
  int64_t index0;
  int depth0;
  const JnNode *node;        /* the for statement (recursive loops) */
  Scope *scope;              /* where the for statement runs */
  JVal changed_last;
  bool changed_set;
};

struct JnCtx {
  JnRun run;
  SutraJinjaOptions opts;
  size_t steps;
  int depth;                 /* nested macro calls / recursive loops */
  int expr_depth;
  Scope *builtins;
  JBuf *out;
};

enum { EXEC_NORMAL, EXEC_BREAK, EXEC_CONTINUE };


Scope *jn_scope_new  (JnCtx *c, Scope *parent);
void   jn_scope_set  (JnCtx *c, Scope *s, const char *name, JVal v);
JVal  *jn_scope_find (Scope *s, const char *name);
JVal   jn_func_value (JnCtx *c, FnKind kind);
JVal   jn_eval       (JnCtx *c, const JnNode *n, Scope *s);
int    jn_exec_body  (JnCtx *c, const JnNodes *body, Scope *s);
JVal   jn_exec_for   (JnCtx *c, const JnNode *n, JVal iterable, Scope *s, int depth0);
JVal   jn_render_capture (JnCtx *c, const JnNodes *body, Scope *s);
bool   jn_contains   (JnCtx *c, JVal needle, JVal hay, int line);
bool   jn_as_index   (JVal k, int64_t *i);
JVal   jn_eval_slice (JnCtx *c, JVal obj, const JnNode *sl, Scope *s, int line);
_Noreturn void jn_overflow (JnCtx *c, int line);
void   jn_eval_args  (JnCtx *c, const JnArgs *a, Scope *s, JnCallArgs *out, int line);
/* fmt % args; escape_args: fmt is a Markup, so %s/%r texts are escaped and the result is Markup. */
JVal   jn_percent_format (JnCtx *c, JStr *fmt, JVal args, bool escape_args, int line);

static inline bool
jn_is_numeric (JVal v)
{
  return v.t == JV_INT || v.t == JV_BOOL || v.t == JV_FLOAT;
}

static inline int64_t
jn_ival (JVal v)
{
  return v.t == JV_INT ? v.v.i : v.t == JV_BOOL ? (int64_t) v.v.b : 0;
}

static inline double
jn_fval (JVal v)
{
  return v.t == JV_FLOAT ? v.v.f : (double) jn_ival (v);
}
