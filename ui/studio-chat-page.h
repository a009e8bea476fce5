/* studio-chat-page.h: the Chat page: streaming answers with a Stop button, a system prompt,
 * sampling settings, base vs fine-tuned side by side (the adapter on or off), and chat with
 * the weights of a paused training run. */
#pragma once

#include <adwaita.h>

#include "studio-job.h"
#include "studio-workspace.h"

G_BEGIN_DECLS

#define STUDIO_TYPE_CHAT_PAGE (studio_chat_page_get_type ())
G_DECLARE_FINAL_TYPE (StudioChatPage, studio_chat_page, STUDIO, CHAT_PAGE, AdwBin)

void      studio_chat_page_set_workspace   (StudioChatPage *self, StudioWorkspace *workspace);
/* What panel.send does: adds the message and starts answering. FALSE when busy or empty. */
gboolean  studio_chat_page_send            (StudioChatPage *self, const char *text);
gboolean  studio_chat_page_is_busy         (StudioChatPage *self);
/* The job that generates answers ("streamed" carries the text as it arrives). */
StudioJob *studio_chat_page_get_job        (StudioChatPage *self);
/* 0 base, 1 fine-tuned, 2 side by side, 3 training weights. */
void      studio_chat_page_set_mode        (StudioChatPage *self, guint mode);
/* The last answer in column 0 (left) or 1 (right), or NULL. */
char     *studio_chat_page_dup_last_answer (StudioChatPage *self, guint column);

G_END_DECLS
