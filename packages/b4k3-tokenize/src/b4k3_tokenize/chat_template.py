"""Chat templates: the Jinja template a model ships (in its GGUF metadata or tokenizer config)
that writes a conversation as the text the model was trained on.

A template is code from the file's author, so it renders in Jinja's immutable sandbox, with the
helpers Hugging Face's `apply_chat_template` gives templates (`raise_exception`, `strftime_now`,
a `tojson` that keeps non-ASCII text) and its settings (`trim_blocks`, `lstrip_blocks`, loop
controls), so the text is the same as Hugging Face renders.
"""

import datetime
import functools
import json


def render_chat_template(template, messages, add_generation_prompt=False, **variables):
    """The text of `messages` (`[{'role': ..., 'content': ...}, ...]`) by `template`.

    `add_generation_prompt` ends it with the header of the assistant's turn (the model's cue to
    answer); `variables` (`bos_token`, `eos_token`, `tools`, ...) are visible to the template.
    """
    if not isinstance(messages, (list, tuple)) or not all(isinstance(message, dict) for message in messages):
        raise TypeError(
            f"messages must be a list of dicts such as {{'role': 'user', 'content': ...}}, got {messages!r:.80}"
        )
    return _compiled(template).render(
        messages=[dict(message) for message in messages], add_generation_prompt=add_generation_prompt, **variables
    )


def _raise_exception(message):
    import jinja2

    raise jinja2.exceptions.TemplateError(message)


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(format):
    return datetime.datetime.now().strftime(format)


@functools.lru_cache(maxsize=16)
def _compiled(template):
    try:
        import jinja2
        import jinja2.ext
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:
        raise ImportError("Chat templates need jinja2: pip install jinja2 (the [bpe] extra of b4k3-tokenize)") from None
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    environment.filters["tojson"] = _tojson
    environment.globals["raise_exception"] = _raise_exception
    environment.globals["strftime_now"] = _strftime_now
    return environment.from_string(template)
