/* studio-model.h: a loaded model folder, shared by the pages (reference counted).
 *
 * Wraps the engine's SutraModel with the tokenizer and chat template found beside it, so the
 * Data page can tokenize, the Chat page can render prompts and the Model page can describe it.
 * Loading runs in GTask's pool. Once loaded it is read-only for the UI; generation jobs hold a
 * reference while they run, so opening another model never frees one in use. */
#pragma once

#include <gio/gio.h>

#include "sutra-model.h"

G_BEGIN_DECLS

struct SutraTokenizer;
struct SutraChatTemplate;

#define STUDIO_TYPE_MODEL (studio_model_get_type ())
G_DECLARE_FINAL_TYPE (StudioModel, studio_model, STUDIO, MODEL, GObject)

void         studio_model_load_async  (const char          *path,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data);
StudioModel *studio_model_load_finish (GAsyncResult *result, GError **error);
/* Blocking variant (tests and worker threads). */
StudioModel *studio_model_load        (const char *path, GError **error);

const char              *studio_model_get_path        (StudioModel *self);
/* "org/name" for a Hugging Face cache snapshot, else the folder's name. */
const char              *studio_model_get_name        (StudioModel *self);
SutraModel              *studio_model_get_sutra       (StudioModel *self);
const SutraModelConfig  *studio_model_get_config      (StudioModel *self);
gint64                   studio_model_get_n_params    (StudioModel *self);
gsize                    studio_model_get_weight_bytes (StudioModel *self);
/* Tokenizer and chat template (NULL when absent or when this build lacks that engine part;
 * studio_model_get_tokenizer_note says why in one sentence). */
struct SutraTokenizer   *studio_model_get_tokenizer   (StudioModel *self);
struct SutraChatTemplate *studio_model_get_chat_template (StudioModel *self);
const char              *studio_model_get_tokenizer_note (StudioModel *self);

/* "135.0 M", "1.24 B" */
char                    *studio_format_params         (gint64 n);

G_END_DECLS
