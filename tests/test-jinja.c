/* test-jinja.c: the Jinja2 subset interpreter (engine/text/sutra-jinja*) against Jinja2 3.1
 * semantics as transformers configures it, independent of any model's template: whitespace
 * control, expressions with Python semantics, undefined values, filters, tests, methods,
 * statements and scoping, syntax errors, render limits, hostile templates, thread safety.
 *
 * The expected strings of the reference table were produced by jinja2 3.1.6 in an
 * ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, loopcontrols) with
 * transformers' tojson/raise_exception and strftime_now frozen at 2025-01-15T12:00:00 (the
 * environment of ../shared/testdata/chat-templates/README.md), on the variables of VARS. */
#include "test-util.h"
#include "sutra-jinja.h"

#include <json-c/json.h>
#include <string.h>

#define NOW_2025_01_15_NOON 1736942400   /* 2025-01-15T12:00:00Z */

static const char VARS[] =
  "{\"messages\": [{\"role\": \"system\", \"content\": \"  Sys\\n\"}, {\"role\": \"user\", "
  "\"content\": \"Hi \\u00e9\"}, {\"role\": \"assistant\", \"content\": \"Yo\"}], "
  "\"d\": {\"b\": 2, \"a\": 1}, \"l\": [3, 1, 2], \"s\": \"h\\u00e9llo w\\u00f6rld "
  "\\ud83e\\udd99\", \"n\": null, \"t\": true}";

typedef struct {
  const char *group, *src;
  const char *expected;      /* NULL: must fail */
  const char *error;         /* fragment of the runtime error message ("" for syntax errors) */
} RefCase;

static const RefCase REF[] = {
  { "ws", "a\n{% if t %}\nb\n{% endif %}\nc", "a\nb\nc", NULL },
  { "ws", "  {% if t %}x{% endif %}  ", "x  ", NULL },
  { "ws", "a  {%- if t -%}  b  {%- endif -%}  c", "abc", NULL },
  { "ws", "x\n    {{ 1 }}\n    {% set q = 1 %}\n    y", "x\n    1\n    y", NULL },
  { "ws", "{# c #}\n{#- d -#}  z", "z", NULL },
  { "ws", "  {#+ c +#}\nq", "  \nq", NULL },
  { "ws", "a\n  {%+ if t %}b{% endif %}\n", "a\n  b", NULL },
  { "ws", "{% for i in [1,2] %}\n  {{ i }}\n{% endfor %}\n", "  1\n  2\n", NULL },
  { "ws", "{% raw %}{{ a }}{% endraw %}", "{{ a }}", NULL },
  { "ws", "{%- raw -%}  {{ b }}  {%- endraw -%}  !", "{{ b }}!", NULL },
  { "ws", "a\r\nb\r{{ \"x\" }}\r\n", "a\nb\nx", NULL },
  { "ws", "end\n\n", "end\n", NULL },
  { "ws", "tab\t{% if 1 %}\t{% endif %}", "tab\t\t", NULL },
  { "ws", "a {{- \" b \" -}} c", "a b c", NULL },
  { "ws", "{% if t %}  \n{% endif %}", "  \n", NULL },
  { "ws", "{{ \"a\" }}\n{{ \"b\" }}\n", "a\nb", NULL },
  { "ws", "{% macro m() %}\n  inner\n{% endmacro %}\n[{{ m() }}]", "[  inner\n]", NULL },
  { "ws", "{%- if t %}\n  x\n{%- endif %}\n", "  x", NULL },
  { "ws", "  \t{% set a = 1 %}\n", "", NULL },
  { "ws", "\343\200\200{% if t %}w{% endif %}", "w", NULL },
  { "expr", "{{ 1 + 2 * 3 }}|{{ 2 ** 3 ** 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % -3 }}|{{ -7.5 % 2 }}|{{ 1 / 4 }}", "7|64|3|-4|-2|0.5|0.25", NULL },
  { "expr", "{{ \"a\" ~ 1 ~ n ~ t ~ 1.5 }}", "a1NoneTrue1.5", NULL },
  { "expr", "{{ \"ab\" * 3 }}{{ [1] * 2 }}", "ababab[1, 1]", NULL },
  { "expr", "{{ 1 == 1.0 }} {{ t == 1 }} {{ \"1\" == 1 }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }}", "True True False True False", NULL },
  { "expr", "{{ \"a\" in \"cat\" }} {{ 2 in l }} {{ \"a\" in d }} {{ 9 not in l }}", "True True True True", NULL },
  { "expr", "{{ n or \"x\" }}|{{ 0 and 1 }}|{{ \"\" or 0 }}|{{ [] or n }}", "x|0|0|None", NULL },
  { "expr", "{{ \"y\" if 0 else \"n\" }}|{{ \"y\" if 0 }}|", "n||", NULL },
  { "expr", "{{ (1, 2) }} {{ (1,) }} {{ () }} {{ {\"a\": [1, 2.5, n, t, \"q's\"]} }}", "(1, 2) (1,) () {'a': [1, 2.5, None, True, \"q's\"]}", NULL },
  { "expr", "{{ 0.1 + 0.2 }} {{ 1e22 }} {{ 1.5e-7 }} {{ 2.0 }} {{ -0.0 }} {{ 1e16 }} {{ 123456789.0 }}", "0.30000000000000004 1e+22 1.5e-07 2.0 -0.0 1e+16 123456789.0", NULL },
  { "expr", "{{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1_000 }}", "31 15 5 1000", NULL },
  { "expr", "{{ 'a' 'b' }}{{ '\\u00e9\\x41\\t|\\\\' }}", "ab\303\251A\t|\\", NULL },
  { "expr", "{{ s[1] }}|{{ s[-1] }}|{{ s[1:4] }}|{{ s[::-1] }}|{{ s|length }}|{{ l[::-1] }}|{{ l[-5:10] }}|{{ s[20:] }}|", "\303\251|\360\237\246\231|\303\251ll|\360\237\246\231 dlr\303\266w oll\303\251h|13|[2, 1, 3]|[3, 1, 2]||", NULL },
  { "expr", "{{ d.a }} {{ d[\"b\"] }} {{ d.get(\"zz\", 5) }}", "1 2 5", NULL },
  { "expr", "{{ messages[-1].role }}", "assistant", NULL },
  { "expr", "{{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ range(3) }}", "[0, 1, 2] [1, 4, 7] [5, 3, 1] range(0, 3)", NULL },
  { "expr", "{{ dict(a=1) }} {{ namespace(a=1).a }}", "{'a': 1} 1", NULL },
  { "expr", "{{ 2 + t }} {{ -t }}", "3 -1", NULL },
  { "expr", "{{ \"%s-%05.1f-%x\" % (\"a\", 3.14159, 255) }}", "a-003.1-ff", NULL },
  { "undefined", "{{ u }}|{{ u is defined }}|{{ u|default(\"d\") }}|{{ u|length }}|{{ u ~ \"x\" }}", "|False|d|0|x", NULL },
  { "undefined", "{% for a in u %}x{% else %}empty{% endfor %}", "empty", NULL },
  { "undefined", "{{ u + 1 }}", NULL, "'u' is undefined" },
  { "undefined", "{{ u.x }}", NULL, "'u' is undefined" },
  { "undefined", "{{ u[\"x\"] }}", NULL, "'u' is undefined" },
  { "undefined", "{{ u() }}", NULL, "'u' is undefined" },
  { "undefined", "{{ messages[0].missing }}|{{ messages[0].missing is defined }}", "|False", NULL },
  { "undefined", "{{ messages[0].missing + \"a\" }}", NULL, "'dict object' has no attribute 'missing'" },
  { "undefined", "{{ l[5] }}|", "|", NULL },
  { "undefined", "{{ l[5] + 1 }}", NULL, "list object has no element 5" },
  { "undefined", "{{ n.x }}|", "|", NULL },
  { "undefined", "{{ n.x ~ \"\" }}|", "|", NULL },
  { "undefined", "{{ u == u }} {{ u != 1 }} {{ u is none }} {{ u is iterable }}", "True True False True", NULL },
  { "undefined", "{% if u %}t{% else %}f{% endif %}{{ not u }}", "fTrue", NULL },
  { "undefined", "{{ u|tojson }}", NULL, "Object of type Undefined is not JSON serializable" },
  { "undefined", "{{ u < 1 }}", NULL, "'u' is undefined" },
  { "undefined", "{{ additional_special_tokens[1] }}", NULL, "'additional_special_tokens' is undefined" },
  { "filters", "{{ \"  x  \"|trim }}|{{ \"xxaxx\"|trim(\"x\") }}|{{ \"\\u00a0x\\u2003\"|trim }}|", "x|a|x|", NULL },
  { "filters", "{{ l|sort }} {{ [\"b\",\"A\",\"a\"]|sort }} {{ [\"b\",\"A\",\"a\"]|sort(case_sensitive=true) }} {{ l|sort(reverse=true) }}", "[1, 2, 3] ['A', 'a', 'b'] ['A', 'a', 'b'] [3, 2, 1]", NULL },
  { "filters", "{{ l|first }} {{ l|last }} {{ \"abc\"|first }} {{ []|first }}|", "3 2 a |", NULL },
  { "filters", "{{ l|join }} {{ l|join(\", \") }} {{ \"abc\"|join(\"-\") }}", "312 3, 1, 2 a-b-c", NULL },
  { "filters", "{{ \"hello world\"|title }} {{ \"hELLO\"|capitalize }} {{ \"\303\237\"|upper }} {{ \"\316\243\316\221\316\243 \316\237\316\224\316\237\316\243\"|lower }}", "Hello World Hello SS \317\203\316\261\317\202 \316\277\316\264\316\277\317\202", NULL },
  { "filters", "{{ \"aaa\"|replace(\"a\",\"b\",2) }}", "bba", NULL },
  { "filters", "{{ d|items|list }} {{ d|dictsort }} {{ d|dictsort(by=\"value\", reverse=true) }}", "[('b', 2), ('a', 1)] [('a', 1), ('b', 2)] [('b', 2), ('a', 1)]", NULL },
  { "filters", "{{ l|sum }} {{ l|max }} {{ l|min }} {{ [1,1,2,\"a\",\"A\"]|unique|list }}", "6 3 1 [1, 2, 'a']", NULL },
  { "filters", "{{ \"42\"|int }} {{ \"4.7\"|int }} {{ \"x\"|int(7) }} {{ 4.9|int }} {{ \"0x1A\"|int(base=16) }} {{ \"3.5\"|float }} {{ \"x\"|float }}", "42 4 7 4 26 3.5 0.0", NULL },
  { "filters", "{{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ 2.1|round(method=\"ceil\") }}", "2.0 4.0 2.67 3.0", NULL },
  { "filters", "{{ \"<a&b>\"|e }}", "&lt;a&amp;b&gt;", NULL },
  { "filters", "{{ \"a\\nb\\n\\nc\"|indent }}|{{ \"a\\nb\"|indent(2, true) }}", "a\n    b\n\n    c|  a\n  b", NULL },
  { "filters", "{{ messages|selectattr(\"role\", \"equalto\", \"user\")|list }}", "[{'role': 'user', 'content': 'Hi \303\251'}]", NULL },
  { "filters", "{{ messages|rejectattr(\"role\", \"==\", \"user\")|map(attribute=\"role\")|join(\",\") }}", "system,assistant", NULL },
  { "filters", "{{ [0,1,2,3]|select(\"odd\")|list }} {{ [1,2,3]|reject(\"gt\", 1)|list }}", "[1, 3] [1]", NULL },
  { "filters", "{{ [\"a\",\"b\"]|map(\"upper\")|list }}", "['A', 'B']", NULL },
  { "filters", "{{ {\"b\":1,\"a\":[1,{}, []]}|tojson }} {{ {\"b\":1,\"a\":2}|tojson(sort_keys=true) }}", "{\"b\": 1, \"a\": [1, {}, []]} {\"a\": 2, \"b\": 1}", NULL },
  { "filters", "{{ d|tojson(indent=2) }}", "{\n  \"b\": 2,\n  \"a\": 1\n}", NULL },
  { "filters", "{{ \"\303\251\\n\\\"\\u0001\"|tojson }} {{ \"\303\251\360\237\246\231\"|tojson(ensure_ascii=true) }} {{ 1.0|tojson }} {{ n|tojson }} {{ (1,2)|tojson }}", "\"\303\251\\n\\\"\\u0001\" \"\\u00e9\\ud83e\\udd99\" 1.0 null [1, 2]", NULL },
  { "filters", "{{ \"abc\"|center(9) }}|{{ \"one two  three\"|wordcount }}|{{ \"hello world foo\"|truncate(9) }}", "   abc   |3|hello...", NULL },
  { "filters", "{{ l|batch(2)|list }}", "[[3, 1], [2]]", NULL },
  { "filters", "{{ messages|selectattr(\"role\", \"equalto\", \"user\") is defined }}{% if [] | select %}gen-true{% endif %}", "Truegen-true", NULL },
  { "filters", "{{ (l|select)|length }}", NULL, "object of type 'generator' has no len()" },
  { "filters", "{{ l|reverse|list }}", "[2, 1, 3]", NULL },
  { "tests", "{{ 1 is odd }} {{ 2 is even }} {{ 6 is divisibleby 3 }} {{ 3.5 is odd }}", "True True True False", NULL },
  { "tests", "{{ n is none }} {{ 1 is number }} {{ t is number }} {{ t is integer }} {{ 1.0 is float }} {{ t is boolean }}", "True True True False True True", NULL },
  { "tests", "{{ \"a\" is string }} {{ d is mapping }} {{ l is sequence }} {{ \"x\" is iterable }} {{ 1 is iterable }}", "True True True True False", NULL },
  { "tests", "{{ \"abc\" is lower }} {{ \"ABC\" is upper }}", "True True", NULL },
  { "tests", "{{ 1 is eq 1 }} {{ 1 is ne 2 }} {{ 1 is lt 2 }} {{ 1 is in [1] }}", "True True True True", NULL },
  { "tests", "{{ false is false }} {{ 0 is false }} {{ t is true }} {{ \"upper\" is filter }} {{ \"odd\" is test }}", "True False True True True", NULL },
  { "tests", "{{ x is not defined }} {{ not x is defined }}", "True True", NULL },
  { "tests", "{{ t is defined if 1 }}", NULL, "expected token 'end of print statement', got 'integer'" },
  { "methods", "{{ \" a b \".strip() }}|{{ \"xax\".strip(\"x\") }}|{{ \"\\n\\nx\\n\".lstrip(\"\\n\") }}", "a b|a|x\n", NULL },
  { "methods", "{{ \"a,b,,c\".split(\",\") }} {{ \" a  b \".split() }} {{ \"a b c\".split(None, 1) }} {{ \"a,b,c\".rsplit(\",\", 1) }}", "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c'] ['a,b', 'c']", NULL },
  { "methods", "{{ \"abc\".startswith(\"a\") }} {{ \"abc\".endswith((\"x\",\"c\")) }}", "True True", NULL },
  { "methods", "{{ \"hello world\".title() }} {{ \"they're\".title() }} {{ \"AbC\".swapcase() }}", "Hello World They'Re aBc", NULL },
  { "methods", "{{ \"abcabc\".find(\"c\") }} {{ \"\303\251ab\".find(\"a\") }} {{ \"aXbX\".count(\"X\") }}", "2 1 2", NULL },
  { "methods", "{{ \",\".join([\"a\",\"b\"]) }}", "a,b", NULL },
  { "methods", "{{ d.items()|list }} {{ d.keys()|list }} {{ d.values()|list }}", "[('b', 2), ('a', 1)] ['b', 'a'] [2, 1]", NULL },
  { "methods", "{{ l.append(4) }}", NULL, "access to attribute 'append' of 'list' object is unsafe." },
  { "methods", "{{ d.update({}) }}", NULL, "access to attribute 'update' of 'dict' object is unsafe." },
  { "methods", "{{ \"x\".__class__ }}|", "|", NULL },
  { "methods", "{{ \"<think>r</think>a\".split(\"</think>\")[-1] }}", "a", NULL },
  { "methods", "{{ \"{} {}\".format(1, \"x\") }}", "1 x", NULL },
  { "methods", "{{ \"  x\\n\".rstrip() }}|", "  x|", NULL },
  { "stmt", "{% set a = 1 %}{% for i in [1,2] %}{% set a = a + i %}{{ a }}{% endfor %}{{ a }}", "231", NULL },
  { "stmt", "{% set ns = namespace(t=0) %}{% for i in [1,2,3] %}{% set ns.t = ns.t + i %}{% endfor %}{{ ns.t }}", "6", NULL },
  { "stmt", "{% for i in [1,2,3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }}|{% endfor %}", "10TrueFalse332|21FalseFalse321|32FalseTrue310|", NULL },
  { "stmt", "{% for i in \"abc\" %}{{ loop.previtem }}-{{ loop.nextitem }}|{% endfor %}", "-b|a-c|b-|", NULL },
  { "stmt", "{% for i in [1,2,3,4] if i is even %}{{ i }}{{ loop.last }}{% endfor %}", "2False4True", NULL },
  { "stmt", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", "b=2;a=1;", NULL },
  { "stmt", "{% for k in d %}{{ k }}{% endfor %}", "ba", NULL },
  { "stmt", "{% for a, b in [[1,2,3]] %}{% endfor %}", NULL, "too many values to unpack (expected 2)" },
  { "stmt", "{% for i in range(10) %}{% if i == 3 %}{% break %}{% endif %}{% if i is odd %}{% continue %}{% endif %}{{ i }}{% endfor %}", "02", NULL },
  { "stmt", "{% for i in [1,2] %}{% for j in [3,4] %}{{ loop.index }}{{ i }}{{ j }} {% endfor %}{{ loop.index }}|{% endfor %}", "113 214 1|123 224 2|", NULL },
  { "stmt", "{% for x in [1,2] %}{{ loop.cycle(\"a\",\"b\") }}{% endfor %}", "ab", NULL },
  { "stmt", "{% if 0 %}a{% elif 1 %}b{% else %}c{% endif %}", "b", NULL },
  { "stmt", "{% set a, b = 1, 2 %}{{ a }}{{ b }}", "12", NULL },
  { "stmt", "{% set x %}inner {{ 1 }}{% endset %}[{{ x }}]", "[inner 1]", NULL },
  { "stmt", "{% macro hi(name, greet=\"Hello\") %}{{ greet }} {{ name }}!{% endmacro %}{{ hi(\"A\") }} {{ hi(\"B\", greet=\"Yo\") }}", "Hello A! Yo B!", NULL },
  { "stmt", "{% macro v() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ v(1, 2, a=3) }}", "(1, 2){'a': 3}", NULL },
  { "stmt", "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}", NULL, "macro 'm' takes not more than 1 argument(s)" },
  { "stmt", "{% macro w() %}[{{ caller() }}]{% endmacro %}{% call w() %}body{% endcall %}", "[body]", NULL },
  { "stmt", "{% filter upper %}abc {{ \"d\" }}{% endfilter %}", "ABC D", NULL },
  { "stmt", "{% with a = 5 %}{{ a }}{% endwith %}{{ a }}|", "5|", NULL },
  { "stmt", "{% generation %}gen {{ 1 }}{% endgeneration %}", "gen 1", NULL },
  { "stmt", "{{ raise_exception(\"boom: \" ~ 1) }}", NULL, "boom: 1" },
  { "stmt", "{{ strftime_now(\"%d %b %Y %H:%M %A\") }}", "15 Jan 2025 12:00 Wednesday", NULL },
  { "stmt", "{% for x in [[1,[2]],[3]] recursive %}{{ x if x is number else loop(x) }}{% endfor %}", "123", NULL },
  { "stmt", "{% for i in [1] %}{% set y = 5 %}{% endfor %}{{ y }}|", "|", NULL },
  { "stmt", "{% set messages = messages[1:] %}{{ messages|length }}", "2", NULL },
  { "stmt", "{% macro r(k) %}{% if k > 0 %}{{ k }}{{ r(k - 1) }}{% endif %}{% endmacro %}{{ r(3) }}", "321", NULL },
  { "stmt", "{% set q = 1 %}{% macro f() %}{{ q }}{% endmacro %}{% set q = 2 %}{{ f() }}", "2", NULL },
  { "syntax", "{% if %}", NULL, "" },
  { "syntax", "{{ }}", NULL, "" },
  { "syntax", "{% endif %}", NULL, "" },
  { "syntax", "{{ 1 + }}", NULL, "" },
  { "syntax", "{% if t %}", NULL, "" },
  { "syntax", "{{ \"abc }}", NULL, "" },
  { "syntax", "{# x", NULL, "" },
  { "syntax", "{% set 1 = 2 %}", NULL, "" },
  { "syntax", "{{ x|nofilter }}", NULL, "" },
  { "syntax", "{{ x is notatest }}", NULL, "" },
  { "syntax", "{% break %}", NULL, "" },
  { "syntax", "{{ (1 }}", NULL, "" },
  { "syntax", "{{ [1, 2 }}", NULL, "" },
  { "syntax", "{% macro m(a=1, b) %}{% endmacro %}", NULL, "" },
  { "syntax", "{{ f(a=1, 2) }}", NULL, "" },
  { "syntax", "{% for x in l %}{% endif %}", NULL, "" },
  { "markup", "{{ \"<b>\"|safe + s }}|{{ \"&\"|e }}|{{ (\"<p>\"|safe) is escaped }}|{{ s is escaped }}", "<b>h\303\251llo w\303\266rld \360\237\246\231|&amp;|True|False", NULL },
  { "markup", "{% set v = d|tojson|safe %}{{ \"<x>\" + v }}|{{ \"<x>\" ~ v }}", "&lt;x&gt;{\"b\": 2, \"a\": 1}|<x>{\"b\": 2, \"a\": 1}", NULL },
  { "markup", "{{ (\"%s<%s\"|safe) % (\"<\", 1) }}|{{ (\"<\"|safe).join([\"&\", 2]) }}|{{ (\"a<b\"|safe).replace(\"<\", \"&\") }}", "&lt;<1|&amp;<2|a&amp;b", NULL },
  { "markup", "{{ [(\"<\"|safe)] }}|{{ (\"<x>\"|safe)[1:] + \"&\" }}|{{ (\"a,b\"|safe).split(\",\")[0] + \"<\" }}|{{ \"&\"|forceescape|forceescape }}", "[Markup('<')]|x>&amp;|a&lt;|&amp;amp;", NULL },
  { "filters", "{{ n|selectattr(\"type\", \"equalto\", \"x\")|list }}|{{ n|map(attribute=\"x\")|list }}|{{ \"\"|select|list }}", "[]|[]|[]", NULL },
  { "filters", "{% if false %}{{ x|no_such_filter }}{% endif %}{{ 1 if true else x is no_such_test }}", "1", NULL },
  { "filters", "{% if true %}{{ x|no_such_filter }}{% endif %}", NULL, "No filter named 'no_such_filter' found." },
};

/* Parses and renders src; returns the status, *out (malloc'd) or err. */
static SutraStatus
render_opts (const char *src, const char *vars_json, const SutraJinjaOptions *o, char **out,
             size_t *len, SutraError *err)
{
  SutraJinjaTemplate *t;
  SutraStatus st = sutra_jinja_parse (src, strlen (src), &t, err);
  if (st != SUTRA_OK)
    return st;
  struct json_object *vars = json_tokener_parse (vars_json ? vars_json : "{}");
  g_assert_nonnull (vars);
  st = sutra_jinja_render (t, vars, o, out, len, err);
  json_object_put (vars);
  sutra_jinja_free (t);
  return st;
}

static SutraStatus
render (const char *src, const char *vars_json, char **out, SutraError *err)
{
  SutraJinjaOptions o = { .now = NOW_2025_01_15_NOON, .now_local = false };
  return render_opts (src, vars_json, &o, out, NULL, err);
}

/* Renders and returns the output, failing the test on an error. */
static char *
must_render (const char *src, const char *vars_json)
{
  char *out = NULL;
  SutraError err = { 0 };
  SutraStatus st = render (src, vars_json, &out, &err);
  if (st != SUTRA_OK)
    g_error ("render of %s failed: %s", src, err.message);
  return out;
}

static void
test_reference_table (void)
{
  size_t pass = 0, n = G_N_ELEMENTS (REF);
  for (size_t i = 0; i < n; i++) {
    const RefCase *c = &REF[i];
    char *out = NULL;
    SutraError err = { 0 };
    SutraStatus st = render (c->src, VARS, &out, &err);
    bool ok;
    if (c->expected) {
      ok = st == SUTRA_OK && strcmp (out, c->expected) == 0;
      if (!ok)
        g_printerr ("[%s] %s\n  expected: %s\n  got:      %s\n", c->group, c->src, c->expected,
                    st == SUTRA_OK ? out : err.message);
    } else {
      ok = st != SUTRA_OK && strstr (err.message, c->error) != NULL;
      if (!ok)
        g_printerr ("[%s] %s\n  expected an error containing \"%s\", got %s\n", c->group, c->src,
                    c->error, st == SUTRA_OK ? out : err.message);
    }
    pass += ok;
    free (out);
  }
  g_test_message ("jinja reference table: %zu/%zu pass", pass, n);
  g_printerr ("jinja reference table: %zu/%zu pass\n", pass, n);
  g_assert_cmpuint (pass, ==, n);
}

/* Syntax errors name the line; unsupported constructs are SUTRA_ERR_UNSUPPORTED. */
static void
test_errors_name_line (void)
{
  char *out = NULL;
  SutraError err = { 0 };
  g_assert_cmpint (render ("a\nb\n{{ 1 + }}", NULL, &out, &err), ==, SUTRA_ERR_FORMAT);
  g_assert_true (g_str_has_prefix (err.message, "template line 3: "));
  g_assert_cmpint (render ("x\n{% include 'other.jinja' %}", NULL, &out, &err), ==,
                   SUTRA_ERR_UNSUPPORTED);
  g_assert_true (g_str_has_prefix (err.message, "template line 2: "));
  g_assert_nonnull (strstr (err.message, "include"));
  g_assert_cmpint (render ("{{ x|groupby('a') }}", NULL, &out, &err), ==, SUTRA_ERR_UNSUPPORTED);
  g_assert_nonnull (strstr (err.message, "groupby"));
  g_assert_cmpint (render ("{{ '\\N{BULLET}' }}", NULL, &out, &err), ==, SUTRA_ERR_UNSUPPORTED);
  g_assert_cmpint (render ("{% extends 'base' %}", NULL, &out, &err), ==, SUTRA_ERR_UNSUPPORTED);
  /* Jinja 3 checks filters and tests when compiling, except inside an if statement or a
   * conditional expression, where they fail only if run; loop and macro bodies are checked */
  g_assert_cmpint (render ("{% for i in [] %}{{ i|nope }}{% endfor %}", NULL, &out, &err), ==,
                   SUTRA_ERR_FORMAT);
  g_assert_cmpstr (err.message, ==, "template line 1: No filter named 'nope'.");
  g_assert_cmpint (render ("{% if false %}{% macro m() %}{{ 1 is nope }}{% endmacro %}{% endif %}",
                           NULL, &out, &err), ==, SUTRA_ERR_FORMAT);
  char *ok = NULL;
  test_assert_ok (render ("{% if false %}{{ x|nope }}{{ x|groupby('a') }}{% endif %}"
                          "{{ 1 if true else x is nope }}", NULL, &ok, &err), &err);
  g_assert_cmpstr (ok, ==, "1");
  free (ok);
  g_assert_cmpint (render ("{% if true %}\n{{ x|nope }}{% endif %}", NULL, &out, &err), ==,
                   SUTRA_ERR_FORMAT);
  g_assert_cmpstr (err.message, ==, "template line 2: No filter named 'nope' found.");
  g_assert_cmpint (render ("{% if true %}{{ x|groupby('a') }}{% endif %}", NULL, &out, &err), ==,
                   SUTRA_ERR_UNSUPPORTED);
  /* a runtime error names its line too */
  g_assert_cmpint (render ("ok\n\n{{ missing.attr }}", NULL, &out, &err), ==, SUTRA_ERR_FORMAT);
  g_assert_cmpstr (err.message, ==, "template line 3: 'missing' is undefined");
  g_assert_null (out);
}

static void
test_raise_exception (void)
{
  char *out = NULL;
  SutraError err = { 0 };
  SutraStatus st = render ("{% if messages|length > 0 %}{{ raise_exception('Only ' ~ 2 ~ ' roles') "
                           "}}{% endif %}", "{\"messages\": [1]}", &out, &err);
  g_assert_cmpint (st, ==, SUTRA_ERR_INVALID);
  g_assert_cmpstr (err.message, ==, "Only 2 roles");
  g_assert_null (out);
}

static void
test_trailing_newline (void)
{
  /* keep_trailing_newline=False drops exactly one trailing newline, after \r\n -> \n */
  const char *src[] = { "a\n", "a\n\n", "a\r\n", "a\r", "a", "" };
  const char *want[] = { "a", "a\n", "a", "a", "a", "" };
  for (size_t i = 0; i < G_N_ELEMENTS (src); i++) {
    char *out = must_render (src[i], NULL);
    g_assert_cmpstr (out, ==, want[i]);
    free (out);
  }
}

/* Strings are code points: indexing, slicing, length and reversal never split UTF-8. */
static void
test_unicode_code_points (void)
{
  const char *vars = "{\"s\": \"a\\u00e9\\u4f60\\ud83e\\udd99z\"}";
  char *out = must_render ("{{ s|length }}|{{ s[1] }}|{{ s[2:4] }}|{{ s[::-1] }}|{{ s[-2] }}|"
                           "{{ s.find('z') }}|{{ s|list|length }}", vars);
  g_assert_cmpstr (out, ==, "5|\xc3\xa9|\xe4\xbd\xa0\xf0\x9f\xa6\x99|z\xf0\x9f\xa6\x99\xe4\xbd\xa0"
                   "\xc3\xa9" "a|\xf0\x9f\xa6\x99|4|5");
  free (out);
  /* invalid UTF-8 in variables becomes U+FFFD; in the template it is a format error */
  struct json_object *v = json_object_new_object ();
  json_object_object_add (v, "x", json_object_new_string_len ("a\xff" "b", 3));
  SutraJinjaTemplate *t;
  SutraError err = { 0 };
  test_assert_ok (sutra_jinja_parse ("[{{ x }}]", 9, &t, &err), &err);
  char *o2;
  test_assert_ok (sutra_jinja_render (t, v, NULL, &o2, NULL, &err), &err);
  g_assert_cmpstr (o2, ==, "[a\xef\xbf\xbd" "b]");
  free (o2);
  sutra_jinja_free (t);
  json_object_put (v);
  g_assert_cmpint (sutra_jinja_parse ("a\xc3", 2, &t, &err), ==, SUTRA_ERR_FORMAT);
}

/* A NUL inside a value survives; out_len counts it. */
static void
test_embedded_nul (void)
{
  SutraJinjaOptions o = { 0 };
  char *out;
  size_t len;
  SutraError err = { 0 };
  test_assert_ok (render_opts ("<{{ x }}>", "{\"x\": \"a\\u0000b\"}", &o, &out, &len, &err), &err);
  g_assert_cmpuint (len, ==, 5);
  g_assert_cmpmem (out, len, "<a\0b>", 5);
  free (out);
}

/* Hostile templates end with an error, quickly, instead of hanging or exhausting memory. */
static void
test_limits (void)
{
  SutraJinjaOptions o = { .max_output = 1000, .max_steps = 100000, .max_memory = 8 << 20,
                          .max_depth = 50 };
  char *out = NULL;
  SutraError err = { 0 };
  g_assert_cmpint (render_opts ("{% for i in range(1000) %}0123456789{% endfor %}", NULL, &o,
                                &out, NULL, &err), ==, SUTRA_ERR_UNSUPPORTED);
  g_assert_nonnull (strstr (err.message, "limit"));
  g_assert_cmpint (render_opts ("{% for i in range(10000) %}{% for j in range(10000) %}"
                                "{% endfor %}{% endfor %}", NULL, &o, &out, NULL, &err), ==,
                   SUTRA_ERR_UNSUPPORTED);
  g_assert_cmpint (render_opts ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", NULL, &o, &out,
                                NULL, &err), ==, SUTRA_ERR_UNSUPPORTED);
  g_assert_cmpint (render_opts ("{% set ns = namespace(s='xy') %}{% for i in range(40) %}"
                                "{% set ns.s = ns.s ~ ns.s %}{% endfor %}", NULL, &o, &out, NULL,
                                &err), ==, SUTRA_ERR_UNSUPPORTED);
  g_assert_cmpint (render_opts ("{{ ('x' * 1000000000000)|length }}", NULL, &o, &out, NULL, &err),
                   ==, SUTRA_ERR_UNSUPPORTED);
  g_assert_cmpint (render_opts ("{{ 2 ** 64 }}", NULL, &o, &out, NULL, &err), ==,
                   SUTRA_ERR_UNSUPPORTED);
  /* Jinja's sandbox refuses ranges over 100000 items */
  g_assert_cmpint (render_opts ("{{ range(200000)|length }}", NULL, &o, &out, NULL, &err), ==,
                   SUTRA_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "MAX_RANGE"));
  /* deep nesting in the source is refused by the parser */
  GString *deep = g_string_new ("{{ ");
  for (int i = 0; i < 5000; i++)
    g_string_append_c (deep, '(');
  g_string_append (deep, "1");
  for (int i = 0; i < 5000; i++)
    g_string_append_c (deep, ')');
  g_string_append (deep, " }}");
  g_assert_cmpint (render_opts (deep->str, NULL, &o, &out, NULL, &err), ==, SUTRA_ERR_UNSUPPORTED);
  g_string_free (deep, TRUE);
  /* a long flat chain parses iteratively but evaluates recursively: bounded as well */
  GString *chain = g_string_new ("{{ 0");
  for (int i = 0; i < 20000; i++)
    g_string_append (chain, " + 1");
  g_string_append (chain, " }}");
  SutraJinjaOptions big = { .max_steps = 10000000 };
  g_assert_cmpint (render_opts (chain->str, NULL, &big, &out, NULL, &err), ==,
                   SUTRA_ERR_UNSUPPORTED);
  g_string_free (chain, TRUE);
  /* values nested deeper than Python's recursion limit */
  g_assert_cmpint (render_opts ("{% set ns = namespace(v=[]) %}{% for i in range(2000) %}"
                                "{% set ns.v = [ns.v] %}{% endfor %}{{ ns.v }}", NULL, &big, &out,
                                NULL, &err), ==, SUTRA_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "recursion"));
  g_assert_null (out);
}

static gpointer
render_thread (gpointer data)
{
  const SutraJinjaTemplate *t = data;
  struct json_object *vars = json_tokener_parse (VARS);
  char *first = NULL;
  for (int k = 0; k < 200; k++) {
    char *out;
    SutraError err = { 0 };
    SutraJinjaOptions o = { .now = NOW_2025_01_15_NOON };
    if (sutra_jinja_render (t, vars, &o, &out, NULL, &err) != SUTRA_OK)
      g_error ("%s", err.message);
    if (!first)
      first = out;
    else {
      g_assert_cmpstr (out, ==, first);
      free (out);
    }
  }
  json_object_put (vars);
  return first;
}

/* One parsed template rendered from several threads at once gives the same text. */
static void
test_concurrent_renders (void)
{
  const char *src = "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
                    "{{ m.role|upper }}:{{ m.content|trim|length }}:{{ 'é🦙'[1] }}{{ s[2:5] }}"
                    "{% endfor %}{{ ns.n }}{{ d|tojson }}{{ strftime_now('%Y') }}";
  SutraJinjaTemplate *t;
  SutraError err = { 0 };
  test_assert_ok (sutra_jinja_parse (src, strlen (src), &t, &err), &err);
  GThread *th[4];
  for (int i = 0; i < 4; i++)
    th[i] = g_thread_new ("render", render_thread, t);
  char *res[4];
  for (int i = 0; i < 4; i++)
    res[i] = g_thread_join (th[i]);
  for (int i = 1; i < 4; i++)
    g_assert_cmpstr (res[i], ==, res[0]);
  g_assert_true (g_str_has_suffix (res[0], "3{\"b\": 2, \"a\": 1}2025"));
  for (int i = 0; i < 4; i++)
    free (res[i]);
  sutra_jinja_free (t);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/jinja/reference-table", test_reference_table);
  g_test_add_func ("/engine/jinja/errors-name-line", test_errors_name_line);
  g_test_add_func ("/engine/jinja/raise-exception", test_raise_exception);
  g_test_add_func ("/engine/jinja/trailing-newline", test_trailing_newline);
  g_test_add_func ("/engine/jinja/unicode-code-points", test_unicode_code_points);
  g_test_add_func ("/engine/jinja/embedded-nul", test_embedded_nul);
  g_test_add_func ("/engine/jinja/limits", test_limits);
  g_test_add_func ("/engine/jinja/concurrent-renders", test_concurrent_renders);
  return g_test_run ();
}
