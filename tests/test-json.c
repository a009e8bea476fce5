/* test-json.c: sutra-json parse errors with positions, the duplicate-key scanner and the
 * typed getters with their defaults and type errors. */
#include "test-util.h"
#include "sutra-json.h"

#include <string.h>

static void
expect_parse_fail (const char *text, unsigned flags, const char *words)
{
  json_object *o = NULL;
  SutraError err = { 0 };
  SutraStatus s = sutra_json_parse (text, strlen (text), "config.json", flags, &o, &err);
  if (s != SUTRA_ERR_FORMAT || !strstr (err.message, words))
    g_error ("'%s': expected FORMAT with '%s', got %s: %s", text, words, sutra_status_name (s),
             err.message);
  g_assert_null (o);
  g_assert_true (g_str_has_prefix (err.message, "config.json: "));
}

static json_object *
parse_ok (const char *text, unsigned flags)
{
  json_object *o = NULL;
  SutraError err = { 0 };
  test_assert_ok (sutra_json_parse (text, strlen (text), "t.json", flags, &o, &err), &err);
  return o;
}

static void
test_parse_errors (void)
{
  expect_parse_fail ("{\n  \"a\": 1,\n  \"b\": x\n}", 0, "line 3, column 8");
  expect_parse_fail ("{\n  \"a\": 1,\n", 0, "line 3, column 1: unexpected end of data");
  expect_parse_fail ("", 0, "empty");
  expect_parse_fail ("{} {}", 0, "line 1, column 4: unexpected data after the JSON value");
  expect_parse_fail ("[1]", SUTRA_JSON_OBJECT, "expected a JSON object at the top level, got array");
  expect_parse_fail ("{\"a\": [NaN]}", SUTRA_JSON_STRICT, "NaN or Infinity");
  expect_parse_fail ("{\"a\": {\"b\": -Infinity}}", SUTRA_JSON_STRICT, "NaN or Infinity");
  expect_parse_fail ("{\"a\": 1e999}", SUTRA_JSON_STRICT, "config.json: ");
  expect_parse_fail ("{\"a\": \"\xc3\"}", SUTRA_JSON_STRICT, "line 1");
  /* duplicates: top level, nested, through escapes, inside arrays */
  expect_parse_fail ("{\"a\": 1, \"b\": 2, \"a\": 3}", SUTRA_JSON_UNIQUE_KEYS,
                     "line 1, column 18: duplicate key \"a\"");
  expect_parse_fail ("{\"x\": {\"k\": 1,\n \"k\": 2}}", SUTRA_JSON_UNIQUE_KEYS,
                     "line 2, column 2: duplicate key \"k\"");
  expect_parse_fail ("{\"\\u00e9\": 1, \"\xc3\xa9\": 2}", SUTRA_JSON_UNIQUE_KEYS,
                     "duplicate key \"\xc3\xa9\"");
  expect_parse_fail ("{\"\\ud83d\\ude00\": 1, \"\xf0\x9f\x98\x80\": 2}", SUTRA_JSON_UNIQUE_KEYS,
                     "duplicate key");
  expect_parse_fail ("[{\"q\": [1, {\"z\": 1, \"z\": 2}]}]", SUTRA_JSON_UNIQUE_KEYS,
                     "duplicate key \"z\"");
  expect_parse_fail ("{\"a\\u0000\": 1}", SUTRA_JSON_UNIQUE_KEYS, "NUL character");
  /* without the flag json-c keeps the last, as Python's json does */
  json_object *o = parse_ok ("{\"a\": 1, \"a\": 3}", 0);
  int64_t v;
  SutraError err = { 0 };
  test_assert_ok (sutra_json_get_int (o, NULL, "a", 0, &v, &err), &err);
  g_assert_cmpint (v, ==, 3);
  json_object_put (o);
  /* distinct keys that only look alike are fine */
  o = parse_ok ("{\"a\": 1, \"A\": 2, \"a \": 3, \"\\\"a\": {\"a\": 4}}  \n",
                SUTRA_JSON_UNIQUE_KEYS | SUTRA_JSON_STRICT | SUTRA_JSON_OBJECT);
  json_object_put (o);
  /* a bare number at the very end of the input (needs the terminating NUL json-c wants) */
  o = parse_ok ("42", 0);
  g_assert_cmpint (json_object_get_int64 (o), ==, 42);
  json_object_put (o);
}

static void
test_load (void)
{
  const char *dir = test_tmpdir ();
  char *p = g_build_filename (dir, "config.json", NULL);
  json_object *o = NULL;
  SutraError err = { 0 };
  g_assert_cmpint (sutra_json_load (p, 0, &o, &err), ==, SUTRA_ERR_NOT_FOUND);
  g_assert_nonnull (strstr (err.message, p));
  g_assert_true (g_file_set_contents (p, "{\n\"hidden_size\": 64,\n\"x\": [1,,2]}", -1, NULL));
  g_assert_cmpint (sutra_json_load (p, 0, &o, &err), ==, SUTRA_ERR_FORMAT);
  char *want = g_strdup_printf ("%s: line 3, column ", p);
  g_assert_true (g_str_has_prefix (err.message, want));
  g_free (want);
  g_assert_true (g_file_set_contents (p, "{\"hidden_size\": 64}", -1, NULL));
  test_assert_ok (sutra_json_load (p, SUTRA_JSON_OBJECT, &o, &err), &err);
  json_object_put (o);
  g_free (p);
}

static void
expect_get_fail (SutraStatus s, const SutraError *err, const char *msg)
{
  g_assert_cmpint (s, ==, SUTRA_ERR_FORMAT);
  g_assert_cmpstr (err->message, ==, msg);
}

static void
test_getters (void)
{
  json_object *o = parse_ok ("{\"hidden_size\": 64, \"name\": \"llama\", \"eps\": 1e-5,"
                             " \"theta\": 10000, \"big\": 4096.0, \"half\": 1.5,"
                             " \"tie\": true, \"pad\": null, \"ids\": [1, 2, -3],"
                             " \"bad_ids\": [1, \"x\"], \"rope\": {\"factor\": 8.0},"
                             " \"huge\": 18446744073709551615, \"one\": 1}", SUTRA_JSON_OBJECT);
  SutraError err = { 0 };
  int64_t i;
  double d;
  bool b;
  const char *s;
  test_assert_ok (sutra_json_get_int (o, "config.json", "hidden_size", -1, &i, &err), &err);
  g_assert_cmpint (i, ==, 64);
  test_assert_ok (sutra_json_get_int (o, "config.json", "big", -1, &i, &err), &err);
  g_assert_cmpint (i, ==, 4096);
  test_assert_ok (sutra_json_get_int (o, "config.json", "missing", 7, &i, &err), &err);
  g_assert_cmpint (i, ==, 7);
  test_assert_ok (sutra_json_get_int (o, "config.json", "pad", -100, &i, &err), &err);
  g_assert_cmpint (i, ==, -100);                  /* null counts as missing */
  i = 99;
  expect_get_fail (sutra_json_get_int (o, "config.json", "name", 0, &i, &err), &err,
                   "config.json: name: expected an integer, got string");
  g_assert_cmpint (i, ==, 99);                    /* untouched on error */
  expect_get_fail (sutra_json_get_int (o, "config.json", "half", 0, &i, &err), &err,
                   "config.json: half: expected an integer, got number");
  expect_get_fail (sutra_json_get_int (o, "config.json", "huge", 0, &i, &err), &err,
                   "config.json: huge: integer out of range");
  expect_get_fail (sutra_json_get_int (o, NULL, "tie", 0, &i, &err), &err,
                   "tie: expected an integer, got boolean");

  test_assert_ok (sutra_json_get_double (o, "c", "eps", 0, &d, &err), &err);
  g_assert_cmpfloat (d, ==, 1e-5);
  test_assert_ok (sutra_json_get_double (o, "c", "theta", 0, &d, &err), &err);
  g_assert_cmpfloat (d, ==, 10000.0);
  test_assert_ok (sutra_json_get_double (o, "c", "nope", 0.5, &d, &err), &err);
  g_assert_cmpfloat (d, ==, 0.5);
  expect_get_fail (sutra_json_get_double (o, "c", "ids", 0, &d, &err), &err,
                   "c: ids: expected a number, got array");

  test_assert_ok (sutra_json_get_bool (o, "c", "tie", false, &b, &err), &err);
  g_assert_true (b);
  test_assert_ok (sutra_json_get_bool (o, "c", "nope", true, &b, &err), &err);
  g_assert_true (b);
  expect_get_fail (sutra_json_get_bool (o, "c", "one", false, &b, &err), &err,
                   "c: one: expected true or false, got integer");

  test_assert_ok (sutra_json_get_string (o, "c", "name", NULL, &s, &err), &err);
  g_assert_cmpstr (s, ==, "llama");
  test_assert_ok (sutra_json_get_string (o, "c", "pad", "dflt", &s, &err), &err);
  g_assert_cmpstr (s, ==, "dflt");
  expect_get_fail (sutra_json_get_string (o, "c", "rope", NULL, &s, &err), &err,
                   "c: rope: expected a string, got object");

  int64_t *a;
  size_t n;
  test_assert_ok (sutra_json_get_int_array (o, "c", "ids", &a, &n, &err), &err);
  g_assert_cmpuint (n, ==, 3);
  g_assert_cmpint (a[2], ==, -3);
  g_free (a);
  test_assert_ok (sutra_json_get_int_array (o, "c", "nope", &a, &n, &err), &err);
  g_assert_null (a);
  g_assert_cmpuint (n, ==, 0);
  expect_get_fail (sutra_json_get_int_array (o, "c", "bad_ids", &a, &n, &err), &err,
                   "c: bad_ids[1]: expected an integer, got string");
  expect_get_fail (sutra_json_get_int_array (o, "c", "name", &a, &n, &err), &err,
                   "c: name: expected an array of integers, got string");

  json_object *rope, *none;
  test_assert_ok (sutra_json_get_object (o, "c", "rope", &rope, &err), &err);
  g_assert_nonnull (rope);
  test_assert_ok (sutra_json_get_double (rope, "c: rope", "factor", 1, &d, &err), &err);
  g_assert_cmpfloat (d, ==, 8.0);
  test_assert_ok (sutra_json_get_object (o, "c", "nope", &none, &err), &err);
  g_assert_null (none);
  /* a missing sub-object reads as all-defaults */
  test_assert_ok (sutra_json_get_double (none, "c: nope", "factor", 1, &d, &err), &err);
  g_assert_cmpfloat (d, ==, 1.0);
  expect_get_fail (sutra_json_get_object (o, "c", "ids", &none, &err), &err,
                   "c: ids: expected an object, got array");
  g_assert_true (sutra_json_has (o, "name"));
  g_assert_false (sutra_json_has (o, "pad"));
  g_assert_false (sutra_json_has (NULL, "name"));
  json_object_put (o);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/json/parse-errors", test_parse_errors);
  g_test_add_func ("/engine/json/load", test_load);
  g_test_add_func ("/engine/json/getters", test_getters);
  return g_test_run ();
}
