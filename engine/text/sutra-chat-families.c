/* sutra-chat-families.c: the built-in chat template families and the family detector.
 *
 * Each family is a Jinja text written for Sutra (not copied from a model) that renders like the
 * real template it is named after on plain conversations (tools, documents and multimodal
 * content are left out); tests/test-chat.c checks every family against the reference
 * renderings in ../shared/testdata/chat-templates (cases.jsonl) of its model's template. The
 * bos/eos tokens here are only used when the model in use does not set its own. */
#include "sutra-chat.h"
#include "sutra-chat-private.h"

#include <pthread.h>
#include <string.h>

static const SutraChatFamily FAMILIES[] = {
  { "chatml",
    "ChatML (<|im_start|>role ... <|im_end|>), as OpenHermes and most base-model fine-tunes",
    NULL, NULL,
    "{#- ChatML: every turn is <|im_start|>ROLE\\nCONTENT<|im_end|>\\n -#}\n"
    "{%- for message in messages -%}\n"
    "  {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<|im_start|>assistant\\n' -}}\n"
    "{%- endif -%}" },
  { "smollm2",
    "ChatML with SmolLM2's default system prompt (HuggingFaceTB/SmolLM2-*-Instruct)",
    NULL, NULL,
    "{#- ChatML that adds a default system turn when the conversation has none -#}\n"
    "{%- for message in messages -%}\n"
    "  {%- if loop.first and message['role'] != 'system' -%}\n"
    "    {{- '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' -}}\n"
    "  {%- endif -%}\n"
    "  {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<|im_start|>assistant\\n' -}}\n"
    "{%- endif -%}" },
  { "qwen2",
    "ChatML with Qwen2's default system prompt \"You are a helpful assistant.\"",
    NULL, NULL,
    "{#- ChatML that adds a default system turn when the conversation has none -#}\n"
    "{%- for message in messages -%}\n"
    "  {%- if loop.first and message['role'] != 'system' -%}\n"
    "    {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' -}}\n"
    "  {%- endif -%}\n"
    "  {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<|im_start|>assistant\\n' -}}\n"
    "{%- endif -%}" },
  { "qwen2.5",
    "Qwen2.5 instruct (ChatML, \"You are Qwen ...\" default system prompt; no tools)",
    NULL, NULL,
    "{#- Qwen2.5 without tools: the system turn is always written (a default one when absent);\n"
    "    later system messages are written as ordinary turns -#}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "  {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' -}}\n"
    "{%- else -%}\n"
    "  {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' -}}\n"
    "{%- endif -%}\n"
    "{%- for message in messages -%}\n"
    "  {%- if not (loop.first and message['role'] == 'system') -%}\n"
    "    {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}\n"
    "  {%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<|im_start|>assistant\\n' -}}\n"
    "{%- endif -%}" },
  { "qwen3",
    "Qwen3 (ChatML with <think> blocks; no tools)",
    NULL, NULL,
    "{#- Qwen3 without tools. Assistant turns after the last user query carry a <think> block\n"
    "    (an empty one when the content has none); earlier ones lose their reasoning. -#}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "  {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' -}}\n"
    "{%- endif -%}\n"
    "{%- set state = namespace(last_query=messages|length - 1, searching=true) -%}\n"
    "{%- for message in messages[::-1] -%}\n"
    "  {%- if state.searching and message['role'] == 'user' and message['content'] is string\n"
    "        and not (message['content'].startswith('<tool_response>') and message['content'].endswith('</tool_response>')) -%}\n"
    "    {%- set state.searching = false -%}\n"
    "    {%- set state.last_query = messages|length - 1 - loop.index0 -%}\n"
    "  {%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- for message in messages -%}\n"
    "  {%- set text = message['content'] if message['content'] is string else '' -%}\n"
    "  {%- if message['role'] == 'user' or (message['role'] == 'system' and not loop.first) -%}\n"
    "    {{- '<|im_start|>' + message['role'] + '\\n' + text + '<|im_end|>\\n' -}}\n"
    "  {%- elif message['role'] == 'assistant' -%}\n"
    "    {%- set thought = '' -%}\n"
    "    {%- if message['reasoning_content'] is string -%}\n"
    "      {%- set thought = message['reasoning_content'] -%}\n"
    "    {%- elif '</think>' in text -%}\n"
    "      {%- set thought = text.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') -%}\n"
    "      {%- set text = text.split('</think>')[-1].lstrip('\\n') -%}\n"
    "    {%- endif -%}\n"
    "    {%- if loop.index0 > state.last_query and (loop.last or thought) -%}\n"
    "      {{- '<|im_start|>assistant\\n<think>\\n' + thought.strip('\\n') + '\\n</think>\\n\\n' + text.lstrip('\\n') -}}\n"
    "    {%- else -%}\n"
    "      {{- '<|im_start|>assistant\\n' + text -}}\n"
    "    {%- endif -%}\n"
    "    {{- '<|im_end|>\\n' -}}\n"
    "  {%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<|im_start|>assistant\\n' -}}\n"
    "  {%- if enable_thinking is defined and enable_thinking is false -%}\n"
    "    {{- '<think>\\n\\n</think>\\n\\n' -}}\n"
    "  {%- endif -%}\n"
    "{%- endif -%}" },
  { "llama-2",
    "Llama 2 chat ([INST] ... [/INST], <<SYS>> system block)",
    "<s>", "</s>",
    "{#- Llama 2 chat: [INST] turns, the system prompt inside <<SYS>> of the first one -#}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "  {%- set turns = messages[1:] -%}\n"
    "  {%- set system = messages[0]['content'] -%}\n"
    "{%- else -%}\n"
    "  {%- set turns = messages -%}\n"
    "  {%- set system = false -%}\n"
    "{%- endif -%}\n"
    "{%- for message in turns -%}\n"
    "  {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "    {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') -}}\n"
    "  {%- endif -%}\n"
    "  {%- set text = message['content'] -%}\n"
    "  {%- if loop.first and system != false -%}\n"
    "    {%- set text = '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' + text -%}\n"
    "  {%- endif -%}\n"
    "  {%- if message['role'] == 'user' -%}\n"
    "    {{- bos_token + '[INST] ' + text.strip() + ' [/INST]' -}}\n"
    "  {%- elif message['role'] == 'assistant' -%}\n"
    "    {{- ' ' + text.strip() + ' ' + eos_token -}}\n"
    "  {%- endif -%}\n"
    "{%- endfor -%}" },
  { "llama-3",
    "Llama 3 instruct (<|start_header_id|>role<|end_header_id|>, <|eot_id|>)",
    "<|begin_of_text|>", "<|eot_id|>",
    "{#- Llama 3 instruct: header ids around the role, <|eot_id|> after each turn -#}\n"
    "{{- bos_token if messages|length > 0 else '' -}}\n"
    "{%- for message in messages -%}\n"
    "  {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content']|trim + '<|eot_id|>' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}\n"
    "{%- endif -%}" },
  { "llama-3.1",
    "Llama 3.1 instruct (system header with knowledge cutoff and date \"26 Jul 2024\"; no tools)",
    "<|begin_of_text|>", "<|eot_id|>",
    "{#- Llama 3.1/3.2 instruct without tools: a system header with the knowledge cutoff and\n"
    "    today's date always comes first -#}\n"
    "{{- bos_token -}}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "  {%- set system = messages[0]['content']|trim -%}\n"
    "  {%- set turns = messages[1:] -%}\n"
    "{%- else -%}\n"
    "  {%- set system = '' -%}\n"
    "  {%- set turns = messages -%}\n"
    "{%- endif -%}\n"
    "{%- if date_string is not defined -%}\n"
    "  {%- set date_string = '26 Jul 2024' -%}\n"
    "{%- endif -%}\n"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\nCutting Knowledge Date: December 2023\\nToday Date: ' + date_string + '\\n\\n' + system + '<|eot_id|>' -}}\n"
    "{%- for message in turns -%}\n"
    "  {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content']|trim + '<|eot_id|>' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}\n"
    "{%- endif -%}" },
  { "llama-3.2",
    "Llama 3.2 instruct (system header with today's date from strftime_now; no tools)",
    "<|begin_of_text|>", "<|eot_id|>",
    "{#- Llama 3.1/3.2 instruct without tools: a system header with the knowledge cutoff and\n"
    "    today's date always comes first -#}\n"
    "{{- bos_token -}}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "  {%- set system = messages[0]['content']|trim -%}\n"
    "  {%- set turns = messages[1:] -%}\n"
    "{%- else -%}\n"
    "  {%- set system = '' -%}\n"
    "  {%- set turns = messages -%}\n"
    "{%- endif -%}\n"
    "{%- if date_string is not defined -%}\n"
    "  {%- set date_string = strftime_now('%d %b %Y') -%}\n"
    "{%- endif -%}\n"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\nCutting Knowledge Date: December 2023\\nToday Date: ' + date_string + '\\n\\n' + system + '<|eot_id|>' -}}\n"
    "{%- for message in turns -%}\n"
    "  {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content']|trim + '<|eot_id|>' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}\n"
    "{%- endif -%}" },
  { "mistral",
    "Mistral instruct v0.1/v0.2 (\"v1\": system prompt joins the first [INST])",
    "<s>", "</s>",
    "{#- Mistral instruct (\"v1\" revision): the system prompt joins the first [INST] -#}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "  {%- set system = messages[0]['content'] -%}\n"
    "  {%- set turns = messages[1:] -%}\n"
    "{%- else -%}\n"
    "  {%- set turns = messages -%}\n"
    "{%- endif -%}\n"
    "{{- bos_token -}}\n"
    "{%- for message in turns -%}\n"
    "  {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "    {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') -}}\n"
    "  {%- endif -%}\n"
    "  {%- if message['role'] == 'user' -%}\n"
    "    {{- ' [INST] ' + (system + '\\n\\n' if loop.first and system is defined else '') + message['content'] + ' [/INST]' -}}\n"
    "  {%- elif message['role'] == 'assistant' -%}\n"
    "    {{- ' ' + message['content'] + eos_token -}}\n"
    "  {%- else -%}\n"
    "    {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') -}}\n"
    "  {%- endif -%}\n"
    "{%- endfor -%}" },
  { "mistral-v3",
    "Mistral v3 (v0.3, Large 2407: system prompt joins the last [INST]; no tools)",
    "<s>", "</s>",
    "{#- Mistral v3 without tools: the system prompt joins the LAST [INST] -#}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "  {%- set system = messages[0]['content'] -%}\n"
    "  {%- set turns = messages[1:] -%}\n"
    "{%- else -%}\n"
    "  {%- set turns = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in turns -%}\n"
    "  {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "    {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') -}}\n"
    "  {%- endif -%}\n"
    "{%- endfor -%}\n"
    "{{- bos_token -}}\n"
    "{%- for message in turns -%}\n"
    "  {%- if message['role'] == 'user' -%}\n"
    "    {{- '[INST] ' + (system + '\\n\\n' if loop.last and system is defined else '') + message['content'] + '[/INST]' -}}\n"
    "  {%- elif message['role'] == 'assistant' -%}\n"
    "    {{- ' ' + message['content']|trim + eos_token -}}\n"
    "  {%- else -%}\n"
    "    {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') -}}\n"
    "  {%- endif -%}\n"
    "{%- endfor -%}" },
  { "mistral-legacy",
    "the first Mistral/Mixtral instruct template (no system role)",
    "<s>", "</s>",
    "{#- The first Mistral instruct template: strict user/assistant alternation, no system role -#}\n"
    "{{- bos_token -}}\n"
    "{%- for message in messages -%}\n"
    "  {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "    {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') -}}\n"
    "  {%- endif -%}\n"
    "  {%- if message['role'] == 'user' -%}\n"
    "    {{- '[INST] ' + message['content'] + ' [/INST]' -}}\n"
    "  {%- elif message['role'] == 'assistant' -%}\n"
    "    {{- message['content'] + eos_token -}}\n"
    "  {%- else -%}\n"
    "    {{- raise_exception('Only user and assistant roles are supported!') -}}\n"
    "  {%- endif -%}\n"
    "{%- endfor -%}" },
  { "zephyr",
    "Zephyr / TinyLlama chat (<|user|> ... </s>)",
    "<s>", "</s>",
    "{#- Zephyr / TinyLlama chat: <|role|>\\nCONTENT</s>\\n -#}\n"
    "{%- for message in messages -%}\n"
    "  {%- if message['role'] in ['user', 'system', 'assistant'] -%}\n"
    "    {{- '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' -}}\n"
    "  {%- endif -%}\n"
    "  {%- if loop.last and add_generation_prompt -%}\n"
    "    {{- '<|assistant|>\\n' -}}\n"
    "  {%- endif -%}\n"
    "{%- endfor -%}" },
  { "phi-3",
    "Phi-3 mini (<|user|> ... <|end|>)",
    "<s>", "<|endoftext|>",
    "{#- Phi-3: <|role|>\\nCONTENT<|end|>\\n; eos_token closes a training example -#}\n"
    "{%- for message in messages -%}\n"
    "  {%- if (message['role'] == 'system') or message['role'] in ['user', 'assistant'] -%}\n"
    "    {{- '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' -}}\n"
    "  {%- endif -%}\n"
    "{%- endfor -%}\n"
    "{{- '<|assistant|>\\n' if add_generation_prompt else eos_token -}}" },
  { "phi-3.5",
    "Phi-3.5 mini (as phi-3; an empty system message is skipped)",
    "<s>", "<|endoftext|>",
    "{#- Phi-3: <|role|>\\nCONTENT<|end|>\\n; eos_token closes a training example -#}\n"
    "{%- for message in messages -%}\n"
    "  {%- if (message['role'] == 'system' and message['content']) or message['role'] in ['user', 'assistant'] -%}\n"
    "    {{- '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' -}}\n"
    "  {%- endif -%}\n"
    "{%- endfor -%}\n"
    "{{- '<|assistant|>\\n' if add_generation_prompt else eos_token -}}" },
  { "gemma",
    "Gemma / Gemma 2 instruct (<start_of_turn>user/model; no system role)",
    "<bos>", "<eos>",
    "{#- Gemma / Gemma 2 instruct: user and model turns only -#}\n"
    "{{- bos_token -}}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "  {{- raise_exception('System role not supported') -}}\n"
    "{%- endif -%}\n"
    "{%- for message in messages -%}\n"
    "  {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "    {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') -}}\n"
    "  {%- endif -%}\n"
    "  {{- '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\\n' + message['content']|trim + '<end_of_turn>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<start_of_turn>model\\n' -}}\n"
    "{%- endif -%}" },
  { "gemma-3",
    "Gemma 3 instruct (text only; system text prepended to the first user turn)",
    "<bos>", "<eos>",
    "{#- Gemma 3 instruct (text only): a system message is prepended to the first user turn -#}\n"
    "{{- bos_token -}}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "  {%- set prefix = messages[0]['content'] + '\\n\\n' -%}\n"
    "  {%- set turns = messages[1:] -%}\n"
    "{%- else -%}\n"
    "  {%- set prefix = '' -%}\n"
    "  {%- set turns = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in turns -%}\n"
    "  {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "    {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') -}}\n"
    "  {%- endif -%}\n"
    "  {{- '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\\n' + (prefix if loop.first else '') + message['content']|trim + '<end_of_turn>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<start_of_turn>model\\n' -}}\n"
    "{%- endif -%}" },
  { "deepseek-coder",
    "DeepSeek Coder instruct (### Instruction / ### Response)",
    "<｜begin▁of▁sentence｜>", "<|EOT|>",
    "{#- DeepSeek Coder instruct: ### Instruction / ### Response with a default system text -#}\n"
    "{{- bos_token -}}\n"
    "{%- if messages|selectattr('role', 'equalto', 'system')|list|length == 0 -%}\n"
    "  {{- 'You are an AI programming assistant, utilizing the Deepseek Coder model, developed by Deepseek Company, and you only answer questions related to computer science. For politically sensitive questions, security and privacy issues, and other non-computer science questions, you will refuse to answer\\n' -}}\n"
    "{%- endif -%}\n"
    "{%- for message in messages -%}\n"
    "  {%- if message['role'] == 'system' -%}\n"
    "    {{- message['content'] -}}\n"
    "  {%- elif message['role'] == 'user' -%}\n"
    "    {{- '### Instruction:\\n' + message['content'] + '\\n' -}}\n"
    "  {%- else -%}\n"
    "    {{- '### Response:\\n' + message['content'] + '\\n<|EOT|>\\n' -}}\n"
    "  {%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '### Response:\\n' -}}\n"
    "{%- endif -%}" },
  { "deepseek-r1",
    "DeepSeek-R1 distilled models (<｜User｜>/<｜Assistant｜>, <think>; no tools)",
    "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>",
    "{#- DeepSeek-R1 (distilled models) without tools: system text first, <｜User｜>/<｜Assistant｜>\n"
    "    markers; an assistant's reasoning before </think> is dropped -#}\n"
    "{{- bos_token -}}\n"
    "{%- for message in messages if message['role'] == 'system' -%}\n"
    "  {%- if loop.last -%}{{- message['content'] -}}{%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- for message in messages -%}\n"
    "  {%- if message['role'] == 'user' -%}\n"
    "    {{- '<｜User｜>' + message['content'] -}}\n"
    "  {%- elif message['role'] == 'assistant' and message['content'] is not none -%}\n"
    "    {{- '<｜Assistant｜>' + message['content'].split('</think>')[-1] + '<｜end▁of▁sentence｜>' -}}\n"
    "  {%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<｜Assistant｜><think>\\n' -}}\n"
    "{%- endif -%}" },
  { "openchat",
    "OpenChat 3.5 (GPT4 Correct User / GPT4 Correct Assistant)",
    "<s>", "<|end_of_turn|>",
    "{#- OpenChat 3.5: GPT4 Correct User / GPT4 Correct Assistant -#}\n"
    "{{- bos_token -}}\n"
    "{%- for message in messages -%}\n"
    "  {{- 'GPT4 Correct ' + message['role'].title() + ': ' + message['content'] + '<|end_of_turn|>' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- 'GPT4 Correct Assistant:' -}}\n"
    "{%- endif -%}" },
  { "vicuna",
    "Vicuna 1.1 (USER: / ASSISTANT:)",
    "<s>", "</s>",
    "{#- Vicuna 1.1: USER: / ASSISTANT: lines, the system text first -#}\n"
    "{%- for message in messages -%}\n"
    "  {%- if message['role'] == 'system' -%}\n"
    "    {{- message['content'] + '\\n\\n' -}}\n"
    "  {%- elif message['role'] == 'user' -%}\n"
    "    {{- 'USER: ' + message['content'] + '\\n' -}}\n"
    "  {%- else -%}\n"
    "    {{- 'ASSISTANT: ' + message['content'] + '</s>\\n' -}}\n"
    "  {%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- 'ASSISTANT:' -}}\n"
    "{%- endif -%}" },
  { "alpaca",
    "Alpaca (### Instruction / ### Response with the Stanford preamble)",
    "<s>", "</s>",
    "{#- Alpaca (Stanford): a preamble, then ### Instruction / ### Response blocks separated by a\n"
    "    blank line; each response ends with eos_token -#}\n"
    "{%- if messages and messages[0]['role'] == 'system' -%}\n"
    "  {{- messages[0]['content'] + '\\n\\n' -}}\n"
    "{%- else -%}\n"
    "  {{- 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\\n\\n' -}}\n"
    "{%- endif -%}\n"
    "{%- for message in messages -%}\n"
    "  {%- if message['role'] == 'user' -%}\n"
    "    {{- '### Instruction:\\n' + message['content'] + '\\n\\n' -}}\n"
    "  {%- elif message['role'] == 'assistant' -%}\n"
    "    {{- '### Response:\\n' + message['content'] + eos_token + '\\n\\n' -}}\n"
    "  {%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '### Response:\\n' -}}\n"
    "{%- endif -%}" },
};

#define N_FAMILIES (sizeof FAMILIES / sizeof FAMILIES[0])

size_t
sutra_chat_family_count (void)
{
  return N_FAMILIES;
}

const SutraChatFamily *
sutra_chat_family_at (size_t i)
{
  return i < N_FAMILIES ? &FAMILIES[i] : NULL;
}

const SutraChatFamily *
sutra_chat_family_find (const char *name)
{
  static const struct { const char *alias, *name; } ALIASES[] = {
    { "tinyllama", "zephyr" }, { "llama2", "llama-2" }, { "llama3", "llama-3" },
    { "llama-3-instruct", "llama-3" }, { "phi3", "phi-3" }, { "gemma2", "gemma" },
    { "gemma-2", "gemma" }, { "gemma3", "gemma-3" }, { "qwen", "qwen2.5" },
    { "mistral-v1", "mistral" }, { "deepseek", "deepseek-r1" }, { "openchat-3.5", "openchat" },
  };
  if (!name)
    return NULL;
  for (size_t i = 0; i < sizeof ALIASES / sizeof ALIASES[0]; i++)
    if (strcmp (ALIASES[i].alias, name) == 0)
      name = ALIASES[i].name;
  for (size_t i = 0; i < N_FAMILIES; i++)
    if (strcmp (FAMILIES[i].name, name) == 0)
      return &FAMILIES[i];
  return NULL;
}

static const char *family_names[N_FAMILIES + 1];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void
init_names (void)
{
  for (size_t i = 0; i < N_FAMILIES; i++)
    family_names[i] = FAMILIES[i].name;
}

const char *const *
sutra_chat_family_names (size_t *n)
{
  pthread_once (&names_once, init_names);
  const char *const *names = family_names;
  if (n)
    *n = N_FAMILIES;
  return names;
}

const char *
sutra_chat_family_description (const char *family)
{
  const SutraChatFamily *f = sutra_chat_family_find (family);
  return f ? f->description : NULL;
}

const char *
sutra_chat_family_source (const char *family)
{
  const SutraChatFamily *f = sutra_chat_family_find (family);
  return f ? f->source : NULL;
}

static bool
has (const char *s, const char *needle)
{
  return strstr (s, needle) != NULL;
}

/* Marker-based guess, most specific first. The revisions of one model's template on the Hub
 * differ in detail (tools, whitespace) but keep these markers. */
const char *
sutra_chat_family_detect (const char *src)
{
  if (!src)
    return NULL;
  if (has (src, "<｜User｜>") || has (src, "<｜Assistant｜>"))
    return "deepseek-r1";
  if (has (src, "### Instruction") && (has (src, "Deepseek") || has (src, "<|EOT|>")))
    return "deepseek-coder";
  if (has (src, "<|im_start|>")) {
    if (has (src, "<think>"))
      return "qwen3";
    if (has (src, "You are Qwen"))
      return "qwen2.5";
    if (has (src, "SmolLM"))
      return "smollm2";
    if (has (src, "You are a helpful assistant."))
      return "qwen2";
    return "chatml";
  }
  if (has (src, "<|start_header_id|>")) {
    if (has (src, "strftime_now"))
      return "llama-3.2";
    if (has (src, "Cutting Knowledge Date"))
      return "llama-3.1";
    return "llama-3";
  }
  if (has (src, "<start_of_turn>"))
    return has (src, "System role not supported") ? "gemma" : "gemma-3";
  if (has (src, "<<SYS>>"))
    return "llama-2";
  if (has (src, "[INST]")) {
    if (has (src, "[AVAILABLE_TOOLS]") || has (src, "loop.last and system"))
      return "mistral-v3";
    if (has (src, "system_message") || has (src, "After the optional system message"))
      return "mistral";
    return "mistral-legacy";
  }
  if (has (src, "<|user|>") || has (src, "<|assistant|>")) {
    if (has (src, "<|end|>"))
      return has (src, "'system' and message['content']") ? "phi-3.5" : "phi-3";
    return "zephyr";
  }
  if (has (src, "GPT4 Correct"))
    return "openchat";
  if (has (src, "USER:") && has (src, "ASSISTANT:"))
    return "vicuna";
  if (has (src, "### Instruction") && has (src, "### Response"))
    return "alpaca";
  return NULL;
}
