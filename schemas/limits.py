"""Size limits on every input: the monitor must not become the easiest way to exhaust it.

Collectors truncate text to these limits (setting ``content.truncated``); the worker refuses
anything beyond them and sends it to the dead-letter topic with the reason.
"""

MAX_EVENT_BYTES = 1_048_576          # one serialized event (JSON), 1 MiB
MAX_TEXT_CHARS = 524_288             # one text field (prompt, completion, tool result, document)
MAX_ID_CHARS = 128                   # event_id and other identifiers
MAX_NAME_CHARS = 256                 # app, agent, tool and model names
MAX_ARGUMENT_DEPTH = 16              # nesting of tool-call arguments
MAX_ARGUMENT_NODES = 10_000          # values inside tool-call arguments, counted recursively
MAX_LABELS = 64                      # entries in ``labels``
MAX_LABEL_VALUE_CHARS = 4_096
MAX_DOCUMENTS = 256                  # retrieved documents per retrieval event
MAX_ROLES = 64
