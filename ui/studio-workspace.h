/* studio-workspace.h: the state the pages share in one window.
 *
 * The open model (a StudioModel, loaded off the main thread), the dataset path, the training
 * settings (a preset plus the keys the user changed, persisted in GSettings and validated by
 * the engine's sutra_train_config_set), the current or last StudioTrainingSession and the
 * adapter that Chat and Export use. Pages observe its properties instead of each other.
 * Failures of its async work are emitted as "error" for the window to show. */
#pragma once

#include <gio/gio.h>

#include "studio-model.h"
#include "studio-training-session.h"

G_BEGIN_DECLS

#define STUDIO_TYPE_WORKSPACE (studio_workspace_get_type ())
G_DECLARE_FINAL_TYPE (StudioWorkspace, studio_workspace, STUDIO, WORKSPACE, GObject)

StudioWorkspace       *studio_workspace_new              (GSettings *settings);
GSettings             *studio_workspace_get_settings     (StudioWorkspace *self);

/* ---- model ---- */
/* Starts loading path (a folder, or an "org/name" in the Hugging Face cache). */
void                   studio_workspace_open_model       (StudioWorkspace *self, const char *path);
StudioModel           *studio_workspace_get_model        (StudioWorkspace *self);
gboolean               studio_workspace_get_model_loading (StudioWorkspace *self);
/* The folder being loaded or loaded (NULL when none). */
const char            *studio_workspace_get_model_path   (StudioWorkspace *self);

/* ---- dataset ---- */
void                   studio_workspace_set_dataset_path (StudioWorkspace *self, const char *path);
const char            *studio_workspace_get_dataset_path (StudioWorkspace *self);

/* ---- training settings ---- */
const char *const     *studio_workspace_preset_names     (void);            /* quick, balanced, thorough */
const char            *studio_workspace_get_preset       (StudioWorkspace *self);
/* Applies a preset and forgets the keys changed since. */
void                   studio_workspace_set_preset       (StudioWorkspace *self, const char *preset);
/* The current value of a config key as text (preset or changed value; engine default else). */
char                  *studio_workspace_dup_train_value  (StudioWorkspace *self, const char *key);
/* Validates through the engine and stores; on error nothing changes. Emits "train-changed". */
gboolean               studio_workspace_set_train_value  (StudioWorkspace *self, const char *key,
                                                          const char *value, GError **error);
/* Applies the preset and the changed keys onto an initialised config (no model/data). */
gboolean               studio_workspace_apply_train_settings (StudioWorkspace  *self,
                                                              SutraTrainConfig *config,
                                                              GError          **error);
/* A complete config: preset, changed keys, model, data, a fresh output_dir under the output
 * folder, threads from the preferences, written into *config (zeroed storage, filled on
 * success; free with sutra_train_config_clear). Fails when the model or data is missing. */
gboolean               studio_workspace_build_train_config (StudioWorkspace  *self,
                                                            SutraTrainConfig *config,
                                                            GError          **error);
/* The output folder preference, or ~/sutra-runs when empty. */
char                  *studio_workspace_dup_output_folder (StudioWorkspace *self);

/* ---- runs ---- */
StudioTrainingSession *studio_workspace_get_session      (StudioWorkspace *self);
gboolean               studio_workspace_start_training   (StudioWorkspace *self, GError **error);
gboolean               studio_workspace_resume_training  (StudioWorkspace *self, const char *run_dir,
                                                          const char *checkpoint, GError **error);
/* Shows a past run (chart from metrics.jsonl) without starting anything. */
gboolean               studio_workspace_open_run         (StudioWorkspace *self, const char *run_dir,
                                                          GError **error);
/* The run folder shown (running, finished or reopened), or NULL. */
const char            *studio_workspace_get_run_dir      (StudioWorkspace *self);
/* Adapter for Chat and Export: the last run's result, or one picked by the user. */
const char            *studio_workspace_get_adapter_dir  (StudioWorkspace *self);
void                   studio_workspace_set_adapter_dir  (StudioWorkspace *self, const char *dir);
/* The loss series shown on the Train page (the session's, or a reopened run's). */
StudioLossSeries      *studio_workspace_get_series       (StudioWorkspace *self);

/* ---- recent files ---- */
void                   studio_workspace_add_recent       (StudioWorkspace *self, const char *key,
                                                          const char *path);

/* Reports an error on the window (the "error" signal). */
void                   studio_workspace_report_error     (StudioWorkspace *self, const GError *error);

G_END_DECLS
