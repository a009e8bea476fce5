/* studio-chat-page.c: streaming chat with the base model, the fine-tuned adapter, both side by
 * side, or the weights of a paused training run. */
#define G_LOG_DOMAIN "studio"

#include "studio-chat-page.h"
#include "studio-engine.h"
#include "studio-error.h"
#include "studio-job.h"

typedef enum { MODE_BASE, MODE_TUNED, MODE_COMPARE, MODE_TRAINING } ChatMode;

typedef struct {
  char *role, *content;
} Turn;

static void
turn_free (gpointer data)
{
  Turn *t = data;
  g_free (t->role);
  g_free (t->content);
  g_free (t);
}

/* One conversation column. The engine's chat session keeps the conversation and the KV cache
 * between replies; it is only ever used inside a job (one at a time) and freed in finalize,
 * after any job has let go of the page. */
typedef struct {
  GtkBox *messages;
  GtkScrolledWindow *scroller;
  GtkLabel *title;
  GPtrArray *turns;             /* Turn*: what is shown, user and assistant alternating */
  GtkLabel *streaming;          /* the answer being written, or NULL */
  GString *answer;
  struct SutraChatSession *session;
  StudioModel *session_model;   /* keeps the session's weights alive (NULL: training weights) */
} Column;

struct _StudioChatPage
{
  AdwBin parent_instance;

  /* Template widgets */
  GtkStack *main_stack;
  AdwStatusPage *missing_page;
  GtkDropDown *mode_dropdown;
  GtkLabel *adapter_label;
  GtkSpinButton *temperature_spin, *top_k_spin, *top_p_spin, *max_tokens_spin;
  GtkEntry *system_entry, *prompt_entry;
  GtkWidget *left_column, *right_column, *left_placeholder;
  GtkBox *left_messages, *right_messages;
  GtkScrolledWindow *left_scroller, *right_scroller;
  GtkLabel *left_title, *right_title;

  /* Owned */
  StudioWorkspace *workspace;
  StudioJob *job;
  Column columns[2];
  guint pending[2];             /* columns still to answer for the current message */
  guint n_pending, current;
  char *message;                /* the user message being answered */
  StudioModel *tuned;           /* base model + adapter (or a fully fine-tuned model), cached */
  char *tuned_adapter;
  StudioTrainingSession *borrowed_from;   /* while a reply runs on the training weights */
  StudioTrainingSession *train_session;   /* owner of the weights the training column uses */
};

G_DEFINE_FINAL_TYPE (StudioChatPage, studio_chat_page, ADW_TYPE_BIN)

static void
column_drop_session (Column *c)
{
#if STUDIO_HAVE_CHAT
  g_clear_pointer (&c->session, sutra_chat_session_free);
#endif
  g_clear_object (&c->session_model);
}

/* ---- generation (worker thread) ---------------------------------------------------------- */

typedef struct {
  StudioModel *base;            /* tokenizer and chat template */
  StudioModel *model;           /* the weights (ref), or NULL with train_weights */
  SutraModel *train_weights;    /* borrowed from a paused trainer */
  char *adapter_dir;            /* tuned reply without a cached tuned model: load it */
  struct SutraChatSession *session;   /* the column's session, or NULL to create one */
  gboolean use_adapter, invalidate;
  char *system, *text;
  double temperature, top_p;
  int top_k, max_tokens;
} GenInput;

typedef struct {
  char *answer;
  const char *stop;             /* why it stopped (engine's name), static */
  struct SutraChatSession *new_session;
  StudioModel *session_model;   /* the model a new session runs on */
  StudioModel *tuned_loaded;    /* set when this job loaded the tuned model */
} GenResult;

static void
gen_input_free (gpointer data)
{
  GenInput *in = data;
  g_clear_object (&in->base);
  g_clear_object (&in->model);
  g_free (in->adapter_dir);
  g_free (in->system);
  g_free (in->text);
  g_free (in);
}

static void
gen_result_free (gpointer data)
{
  GenResult *r = data;
  g_free (r->answer);
#if STUDIO_HAVE_CHAT
  g_clear_pointer (&r->new_session, sutra_chat_session_free);
#endif
  g_clear_object (&r->session_model);
  g_clear_object (&r->tuned_loaded);
  g_free (r);
}

/* The base model again, with the adapter (PEFT folder) attached, or a fully fine-tuned folder. */
static StudioModel *
load_tuned (StudioModel *base, const char *adapter_dir, GError **error)
{
  g_autofree char *adapter_cfg = g_build_filename (adapter_dir, "adapter_config.json", NULL);
  g_autoptr(StudioModel) m = NULL;
  SutraError err = { 0 };

  if (!g_file_test (adapter_cfg, G_FILE_TEST_IS_REGULAR))
    return studio_model_load (adapter_dir, error);   /* full fine-tuning: a model folder */
  m = studio_model_load (studio_model_get_path (base), error);
  if (m == NULL)
    return NULL;
  if (sutra_lora_load (studio_model_get_sutra (m), adapter_dir, NULL, &err) != SUTRA_OK)
    {
      studio_error_from_sutra (&err, error);
      return NULL;
    }
  return g_steal_pointer (&m);
}

#if STUDIO_HAVE_CHAT
static bool
on_token (void *user, int id, const char *text, size_t len)   /* worker thread */
{
  StudioJob *job = user;

  if (len)
    studio_job_emit_text (job, text, (gssize) len);
  return !atomic_load (studio_job_cancel_flag (job));
}
#endif

static gpointer
generate_thread (StudioJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  GenInput *in = data;
  GenResult *r = g_new0 (GenResult, 1);
#if STUDIO_HAVE_CHAT
  SutraModel *weights = in->train_weights ? in->train_weights
                      : in->model ? studio_model_get_sutra (in->model) : NULL;
  struct SutraChatSession *session = in->session;
  SutraGenConfig gcfg;
  SutraGenParams p;
  SutraGenResult res;
  SutraError err = { 0 };

  if (in->adapter_dir)
    {
      studio_job_report (job, -1, "Loading the fine-tuned weights…");
      r->tuned_loaded = load_tuned (in->base, in->adapter_dir, error);
      if (r->tuned_loaded == NULL)
        goto fail;
      weights = studio_model_get_sutra (r->tuned_loaded);
      r->session_model = g_object_ref (r->tuned_loaded);
    }
  else if (in->model)
    r->session_model = g_object_ref (in->model);
  if (session == NULL)
    {
      SutraChatSessionOptions o;
      sutra_chat_session_options_init (&o);
      o.system = in->system && *in->system ? in->system : NULL;
      o.use_adapter = in->use_adapter;
      if (sutra_chat_session_new (weights, studio_model_get_tokenizer (in->base),
                                  studio_model_get_chat_template (in->base), &o, &r->new_session,
                                  &err) != SUTRA_OK)
        goto engine_fail;
      session = r->new_session;
    }
  else
    sutra_chat_session_set_system (session, in->system && *in->system ? in->system : NULL);
  if (in->invalidate)
    sutra_chat_session_invalidate (session);

  /* The model's generation_config.json first, then the page's sampling settings. */
  if (sutra_gen_config_load (studio_model_get_path (in->base), &weights->cfg,
                             studio_model_get_tokenizer (in->base), &gcfg, &err) != SUTRA_OK)
    goto engine_fail;
  sutra_gen_params_init (&p, &gcfg);
  p.sampler.do_sample = in->temperature > 0;
  p.sampler.temperature = in->temperature > 0 ? (float) in->temperature : 1.0f;
  p.sampler.top_k = in->top_k;
  p.sampler.top_p = in->top_p > 0 ? (float) in->top_p : 1.0f;
  p.sampler.seed = g_random_int ();
  p.max_new_tokens = in->max_tokens;
  if (sutra_chat_session_send (session, in->text, &p, on_token, job, &res, &err) != SUTRA_OK)
    goto engine_fail;
  r->answer = g_strdup (sutra_chat_session_reply (session));
  r->stop = sutra_stop_reason_name (res.reason);
  return r;

engine_fail:
  studio_error_from_sutra (&err, error);
fail:
  /* A session made here for the failed reply goes too (and the model the page did not see). */
  gen_result_free (r);
  return NULL;
#else
  (void) load_tuned;
  (void) in;
  gen_result_free (r);
  studio_error_missing_engine (!STUDIO_HAVE_GENERATE ? STUDIO_MISSING_GENERATE
                               : !STUDIO_HAVE_TOKENIZER ? STUDIO_MISSING_TOKENIZER
                               : STUDIO_MISSING_CHAT, error);
  return NULL;
#endif
}

/* ---- conversation (main thread) ---------------------------------------------------------- */

static ChatMode
get_mode (StudioChatPage *self)
{
  return (ChatMode) gtk_drop_down_get_selected (self->mode_dropdown);
}

static void
scroll_to_end (Column *c)
{
  GtkAdjustment *adj = gtk_scrolled_window_get_vadjustment (c->scroller);

  gtk_adjustment_set_value (adj, gtk_adjustment_get_upper (adj));
}

static GtkLabel *
add_bubble (Column *c, const char *role, const char *text)
{
  GtkWidget *label = gtk_label_new (text);

  gtk_label_set_wrap (GTK_LABEL (label), TRUE);
  gtk_label_set_wrap_mode (GTK_LABEL (label), PANGO_WRAP_WORD_CHAR);
  gtk_label_set_selectable (GTK_LABEL (label), TRUE);
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_widget_set_halign (label, g_str_equal (role, "user") ? GTK_ALIGN_END : GTK_ALIGN_START);
  gtk_widget_add_css_class (label, "bubble");
  gtk_widget_add_css_class (label, role);
  gtk_box_append (c->messages, label);
  scroll_to_end (c);
  return GTK_LABEL (label);
}

static void
update_titles (StudioChatPage *self)
{
  StudioModel *model = studio_workspace_get_model (self->workspace);
  const char *adapter = studio_workspace_get_adapter_dir (self->workspace);
  ChatMode mode = get_mode (self);
  const char *name = model ? studio_model_get_name (model) : "no model open";
  g_autofree char *base_title = g_strdup_printf ("Base: %s", name);
  g_autofree char *tuned_title = g_strdup_printf ("Fine-tuned: %s", adapter ? adapter : "no adapter yet");
  g_autofree char *adapter_text = adapter ? g_strdup_printf ("Adapter: %s", adapter)
                                          : g_strdup ("No adapter yet: train one, or reopen a run on the Train page");

  gtk_label_set_text (self->adapter_label, adapter_text);
  gtk_widget_set_visible (self->right_column, mode == MODE_COMPARE);
  switch (mode)
    {
    case MODE_BASE:
    case MODE_COMPARE:
      gtk_label_set_text (self->left_title, base_title);
      break;
    case MODE_TUNED:
      gtk_label_set_text (self->left_title, tuned_title);
      break;
    case MODE_TRAINING:
      gtk_label_set_text (self->left_title, "Training weights (while the run is paused)");
      break;
    }
  gtk_label_set_text (self->right_title, tuned_title);
}

static void clear_action (GtkWidget *widget, const char *action_name, GVariant *param);

/* A new mode, model or adapter starts a new conversation: the sessions belong to the old one. */
static void
restart_conversation (StudioChatPage *self)
{
  if (studio_job_get_running (self->job))
    return;
  clear_action (GTK_WIDGET (self), NULL, NULL);
  for (guint i = 0; i < 2; i++)
    column_drop_session (&self->columns[i]);
  g_clear_object (&self->train_session);
  update_titles (self);
}

static void
mode_changed_cb (StudioChatPage *self)
{
  if (self->workspace)
    restart_conversation (self);
}

static void start_next (StudioChatPage *self);

static void
on_streamed (StudioJob *job, const char *text, StudioChatPage *self)
{
  Column *c = &self->columns[self->current];

  if (c->streaming == NULL)
    return;
  g_string_append (c->answer, text);
  gtk_label_set_text (c->streaming, c->answer->str);
  scroll_to_end (c);
}

static void
release_borrowed (StudioChatPage *self)
{
  if (self->borrowed_from)
    {
      studio_training_session_release_model (self->borrowed_from);
      g_clear_object (&self->borrowed_from);
    }
}

static void
finish_column (Column *c, const char *answer)
{
  Turn *t = g_new0 (Turn, 1);

  t->role = g_strdup ("assistant");
  t->content = g_strdup (answer);
  g_ptr_array_add (c->turns, t);
  c->streaming = NULL;
}

static void
generated (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr(StudioChatPage) self = data;
  g_autoptr(GError) error = NULL;
  GenResult *r = studio_job_finish (STUDIO_JOB (source), result, &error);
  Column *c = &self->columns[self->current];

  release_borrowed (self);
  if (r && r->tuned_loaded)
    {
      g_set_object (&self->tuned, r->tuned_loaded);
      g_free (self->tuned_adapter);
      self->tuned_adapter = g_strdup (studio_workspace_get_adapter_dir (self->workspace));
    }
  if (r && r->new_session)
    {
      column_drop_session (c);
      c->session = g_steal_pointer (&r->new_session);
      c->session_model = g_steal_pointer (&r->session_model);
    }
  if (r == NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      gtk_label_set_text (c->streaming, error->message);
      gtk_widget_add_css_class (GTK_WIDGET (c->streaming), "error");
      studio_workspace_report_error (self->workspace, error);
    }
  else
    {
      /* The engine's reply is the reference (the stream may hold a held-back tail). */
      if (r && r->answer)
        g_string_assign (c->answer, r->answer);
      if (r && g_strcmp0 (r->stop, "callback") == 0)
        g_string_append (c->answer, c->answer->len ? " [stopped]" : "[stopped]");
      gtk_label_set_text (c->streaming, c->answer->str);
    }
  finish_column (c, c->answer->str);
  if (r == NULL || g_strcmp0 (r->stop, "callback") == 0)
    self->n_pending = 0;   /* Stop (or a failure) ends the whole round, the other column too */
  if (r)
    gen_result_free (r);
  start_next (self);
}

static void
start_next (StudioChatPage *self)
{
  GenInput *in;
  Column *c;
  ChatMode mode = get_mode (self);
  StudioModel *base = studio_workspace_get_model (self->workspace);
  const char *why = NULL;
  gboolean tuned;

  if (self->n_pending == 0)
    return;
  self->current = self->pending[0];
  self->pending[0] = self->pending[1];
  self->n_pending--;
  c = &self->columns[self->current];
  c->streaming = add_bubble (c, "assistant", "…");
  g_string_truncate (c->answer, 0);

  in = g_new0 (GenInput, 1);
  in->base = g_object_ref (base);
  in->session = c->session;
  in->system = g_strdup (gtk_editable_get_text (GTK_EDITABLE (self->system_entry)));
  in->text = g_strdup (self->message);
  in->temperature = gtk_spin_button_get_value (self->temperature_spin);
  in->top_p = gtk_spin_button_get_value (self->top_p_spin);
  in->top_k = gtk_spin_button_get_value_as_int (self->top_k_spin);
  in->max_tokens = gtk_spin_button_get_value_as_int (self->max_tokens_spin);

  tuned = (mode == MODE_TUNED && self->current == 0) || (mode == MODE_COMPARE && self->current == 1);
  if (mode == MODE_TRAINING)
    {
      StudioTrainingSession *s = studio_workspace_get_session (self->workspace);
      /* Another run than the one this conversation started on: start over. */
      if (self->train_session && self->train_session != s)
        {
          column_drop_session (c);
          g_clear_object (&self->train_session);
          in->session = NULL;
        }
      in->train_weights = s ? studio_training_session_borrow_model (s) : NULL;
      if (in->train_weights)
        {
          self->borrowed_from = g_object_ref (s);
          g_set_object (&self->train_session, s);
          in->use_adapter = TRUE;
          in->invalidate = TRUE;   /* the weights moved on since the last pause */
        }
      else
        why = "Pause a training run first: the paused weights answer here.";
    }
  else if (tuned)
    {
      const char *adapter = studio_workspace_get_adapter_dir (self->workspace);
      in->use_adapter = TRUE;
      if (adapter == NULL)
        why = "No adapter yet: train one or reopen a run on the Train page.";
      else if (self->tuned && g_strcmp0 (self->tuned_adapter, adapter) == 0)
        in->model = g_object_ref (self->tuned);
      else
        {
          /* Another adapter than the cached one: its conversation starts over. */
          column_drop_session (c);
          in->session = NULL;
          in->adapter_dir = g_strdup (adapter);
        }
    }
  else
    in->model = g_object_ref (base);

  if (why)
    {
      /* Nothing to run: say why in the bubble, keep the conversation consistent. */
      gtk_label_set_text (c->streaming, why);
      gtk_widget_add_css_class (GTK_WIDGET (c->streaming), "error");
      finish_column (c, "");
      gen_input_free (in);
      start_next (self);
      return;
    }
  studio_job_run (self->job, generate_thread, in, gen_input_free, gen_result_free, generated,
                  g_object_ref (self));
}

gboolean
studio_chat_page_send (StudioChatPage *self, const char *text)
{
  ChatMode mode = get_mode (self);
  guint n_columns = mode == MODE_COMPARE ? 2 : 1;

  g_return_val_if_fail (STUDIO_IS_CHAT_PAGE (self), FALSE);
  if (studio_job_get_running (self->job) || text == NULL || *text == '\0')
    return FALSE;
  if (studio_workspace_get_model (self->workspace) == NULL)
    {
      g_autoptr(GError) error = g_error_new_literal (STUDIO_ERROR, STUDIO_ERROR_INVALID,
                                                     "Open a model first (Model page)");
      studio_workspace_report_error (self->workspace, error);
      return FALSE;
    }
  gtk_widget_set_visible (self->left_placeholder, FALSE);
  g_free (self->message);
  self->message = g_strdup (text);
  for (guint i = 0; i < n_columns; i++)
    {
      Turn *t = g_new0 (Turn, 1);
      t->role = g_strdup ("user");
      t->content = g_strdup (text);
      g_ptr_array_add (self->columns[i].turns, t);
      add_bubble (&self->columns[i], "user", text);
      self->pending[i] = i;
    }
  self->n_pending = n_columns;
  start_next (self);
  return TRUE;
}

static void
send_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  StudioChatPage *self = STUDIO_CHAT_PAGE (widget);
  g_autofree char *text = g_strdup (gtk_editable_get_text (GTK_EDITABLE (self->prompt_entry)));

  if (studio_chat_page_send (self, g_strstrip (text)))
    gtk_editable_set_text (GTK_EDITABLE (self->prompt_entry), "");
}

static void
prompt_activate_cb (StudioChatPage *self)
{
  gtk_widget_activate_action (GTK_WIDGET (self), "panel.send", NULL);
}

static void
stop_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  studio_job_cancel (STUDIO_CHAT_PAGE (widget)->job);
}

static void
clear_column (Column *c, GtkWidget *keep)
{
  GtkWidget *child = gtk_widget_get_first_child (GTK_WIDGET (c->messages));

  while (child)
    {
      GtkWidget *next = gtk_widget_get_next_sibling (child);
      if (child != keep)
        gtk_box_remove (c->messages, child);
      child = next;
    }
  g_ptr_array_set_size (c->turns, 0);
}

static void
clear_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  StudioChatPage *self = STUDIO_CHAT_PAGE (widget);

  if (studio_job_get_running (self->job))
    return;
  clear_column (&self->columns[0], self->left_placeholder);
  clear_column (&self->columns[1], NULL);
#if STUDIO_HAVE_CHAT
  for (guint i = 0; i < 2; i++)
    if (self->columns[i].session)
      sutra_chat_session_clear (self->columns[i].session);
#endif
  gtk_widget_set_visible (self->left_placeholder, TRUE);
}

static void
on_job_running (StudioJob *job, GParamSpec *pspec, StudioChatPage *self)
{
  gboolean running = studio_job_get_running (job);

  gtk_widget_action_set_enabled (GTK_WIDGET (self), "panel.send", !running);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "panel.stop", running);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "panel.clear", !running);
}

static void
on_workspace_changed (StudioWorkspace *ws, GParamSpec *pspec, StudioChatPage *self)
{
  restart_conversation (self);
}

StudioJob *
studio_chat_page_get_job (StudioChatPage *self)
{
  return self->job;
}

gboolean
studio_chat_page_is_busy (StudioChatPage *self)
{
  return studio_job_get_running (self->job);
}

char *
studio_chat_page_dup_last_answer (StudioChatPage *self, guint column)
{
  Column *c;

  g_return_val_if_fail (column < 2, NULL);
  c = &self->columns[column];
  for (guint i = c->turns->len; i > 0; i--)
    {
      Turn *t = c->turns->pdata[i - 1];
      if (g_str_equal (t->role, "assistant"))
        return g_strdup (t->content);
    }
  return NULL;
}

void
studio_chat_page_set_mode (StudioChatPage *self, guint mode)
{
  gtk_drop_down_set_selected (self->mode_dropdown, mode);
}

void
studio_chat_page_set_workspace (StudioChatPage *self, StudioWorkspace *workspace)
{
  GSettings *settings = studio_workspace_get_settings (workspace);

  g_return_if_fail (STUDIO_IS_CHAT_PAGE (self));
  g_return_if_fail (self->workspace == NULL);
  self->workspace = g_object_ref (workspace);
  g_signal_connect_object (workspace, "notify::model", G_CALLBACK (on_workspace_changed), self, 0);
  g_signal_connect_object (workspace, "notify::adapter-dir", G_CALLBACK (on_workspace_changed), self, 0);
  g_settings_bind (settings, "chat-system-prompt", self->system_entry, "text", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "chat-temperature", self->temperature_spin, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "chat-top-k", self->top_k_spin, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "chat-top-p", self->top_p_spin, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "chat-max-tokens", self->max_tokens_spin, "value", G_SETTINGS_BIND_DEFAULT);
  update_titles (self);
}

static void
studio_chat_page_dispose (GObject *object)
{
  StudioChatPage *self = STUDIO_CHAT_PAGE (object);

  if (self->job)
    studio_job_cancel (self->job);
  /* AdwBin (libadwaita 1.2) unparents its child again in its own dispose: let it go first. */
  adw_bin_set_child (ADW_BIN (self), NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), STUDIO_TYPE_CHAT_PAGE);
  release_borrowed (self);
  g_clear_object (&self->job);
  g_clear_object (&self->workspace);
  G_OBJECT_CLASS (studio_chat_page_parent_class)->dispose (object);
}

static void
studio_chat_page_finalize (GObject *object)
{
  StudioChatPage *self = STUDIO_CHAT_PAGE (object);

  /* Sessions borrow models (and maybe the trainer's): free them before what they borrow. */
  for (guint i = 0; i < 2; i++)
    {
      column_drop_session (&self->columns[i]);
      g_ptr_array_unref (self->columns[i].turns);
      g_string_free (self->columns[i].answer, TRUE);
    }
  g_clear_object (&self->tuned);
  g_clear_object (&self->train_session);
  g_free (self->tuned_adapter);
  g_free (self->message);
  G_OBJECT_CLASS (studio_chat_page_parent_class)->finalize (object);
}

static void
studio_chat_page_class_init (StudioChatPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = studio_chat_page_dispose;
  object_class->finalize = studio_chat_page_finalize;
  gtk_widget_class_set_template_from_resource (widget_class,
                                               STUDIO_RESOURCE_PATH "/studio-chat-page.ui");
#define BIND(name) gtk_widget_class_bind_template_child (widget_class, StudioChatPage, name)
  BIND (main_stack); BIND (missing_page); BIND (mode_dropdown); BIND (adapter_label);
  BIND (temperature_spin); BIND (top_k_spin); BIND (top_p_spin); BIND (max_tokens_spin);
  BIND (system_entry); BIND (prompt_entry); BIND (left_column); BIND (right_column);
  BIND (left_placeholder); BIND (left_messages); BIND (right_messages); BIND (left_scroller);
  BIND (right_scroller); BIND (left_title); BIND (right_title);
#undef BIND
  gtk_widget_class_bind_template_callback (widget_class, mode_changed_cb);
  gtk_widget_class_bind_template_callback (widget_class, prompt_activate_cb);
  gtk_widget_class_install_action (widget_class, "panel.send", NULL, send_action);
  gtk_widget_class_install_action (widget_class, "panel.stop", NULL, stop_action);
  gtk_widget_class_install_action (widget_class, "panel.clear", NULL, clear_action);
}

static void
studio_chat_page_init (StudioChatPage *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->job = studio_job_new ("Generating an answer");
  g_signal_connect (self->job, "streamed", G_CALLBACK (on_streamed), self);
  g_signal_connect (self->job, "notify::running", G_CALLBACK (on_job_running), self);
  on_job_running (self->job, NULL, self);
  self->columns[0] = (Column) { self->left_messages, self->left_scroller, self->left_title,
                                g_ptr_array_new_with_free_func (turn_free), NULL,
                                g_string_new (NULL), NULL, NULL };
  self->columns[1] = (Column) { self->right_messages, self->right_scroller, self->right_title,
                                g_ptr_array_new_with_free_func (turn_free), NULL,
                                g_string_new (NULL), NULL, NULL };

#if STUDIO_HAVE_CHAT
  gtk_stack_set_visible_child_name (self->main_stack, "ready");
#else
  {
    g_autofree char *desc = g_strdup_printf (
      "Chat needs %s%s%s%s%s, which %s not landed in this source tree yet. The page switches on "
      "by itself once %s built in.",
      STUDIO_HAVE_GENERATE ? "" : STUDIO_MISSING_GENERATE,
      !STUDIO_HAVE_GENERATE && !STUDIO_HAVE_TOKENIZER ? ", " : "",
      STUDIO_HAVE_TOKENIZER ? "" : STUDIO_MISSING_TOKENIZER,
      (!STUDIO_HAVE_GENERATE || !STUDIO_HAVE_TOKENIZER) && !STUDIO_HAVE_CHAT_TEMPLATE ? " and " : "",
      STUDIO_HAVE_CHAT_TEMPLATE ? "" : STUDIO_MISSING_CHAT,
      (STUDIO_HAVE_GENERATE + STUDIO_HAVE_TOKENIZER + STUDIO_HAVE_CHAT_TEMPLATE) == 2 ? "has" : "have",
      (STUDIO_HAVE_GENERATE + STUDIO_HAVE_TOKENIZER + STUDIO_HAVE_CHAT_TEMPLATE) == 2 ? "it is" : "they are");
    adw_status_page_set_description (self->missing_page, desc);
    gtk_stack_set_visible_child_name (self->main_stack, "missing");
  }
#endif
}
