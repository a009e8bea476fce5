/* fuzz-json.c: libFuzzer target for sutra-json: parsing in both modes (with the
 * duplicate-key scanner) and the typed getters on whatever object comes out. */
#include "sutra-json.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const unsigned modes[] = {
    SUTRA_JSON_OBJECT, SUTRA_JSON_STRICT | SUTRA_JSON_UNIQUE_KEYS | SUTRA_JSON_OBJECT,
    SUTRA_JSON_UNIQUE_KEYS };
  for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
    json_object *o = NULL;
    SutraError err = { 0 };
    if (sutra_json_parse ((const char *) data, size, "fuzz.json", modes[m], &o, &err) != SUTRA_OK) {
      SUTRA_ASSERT (o == NULL && err.message[0]);
      continue;
    }
    if (json_object_is_type (o, json_type_object)) {
      json_object_object_foreach (o, key, val) {
        (void) val;
        int64_t i, *a;
        double d;
        bool b;
        const char *s;
        size_t n;
        json_object *sub;
        sutra_json_get_int (o, "fuzz.json", key, 0, &i, &err);
        sutra_json_get_double (o, "fuzz.json", key, 0, &d, &err);
        sutra_json_get_bool (o, "fuzz.json", key, false, &b, &err);
        sutra_json_get_string (o, "fuzz.json", key, NULL, &s, &err);
        if (sutra_json_get_int_array (o, "fuzz.json", key, &a, &n, &err) == SUTRA_OK)
          free (a);
        sutra_json_get_object (o, "fuzz.json", key, &sub, &err);
      }
    }
    json_object_put (o);
  }
  return 0;
}
