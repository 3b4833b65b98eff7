# ruff: noqa: E501 - templates are kept verbatim, as vendors ship them
"""Chat templates for tests: real-world ones (must stay clean) and published attacks.

The benign templates are the ones model vendors ship (ChatML, Llama-3.2, Mistral,
Qwen2.5 with tool calling, Gemma, a transformers ``{% generation %}`` template).
The attacks are Jinja2 sandbox-escape payloads as published (CVE-2024-34359 for
llama-cpp-python, the classic SSTI gadget chains), with ``true`` as the command.
"""

from __future__ import annotations

__all__ = ["ATTACK_TEMPLATES", "BENIGN_TEMPLATES", "CHATML", "CVE_2024_34359"]

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

LLAMA_3 = """{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- if tools_in_user_message and not tools is none %}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
    {%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}
{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""

MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant "
    "roles are supported!') }}{% endif %}{% endfor %}"
)

QWEN2_5_TOOLS = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
    "supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}"
    "{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)

# transformers' assistant-mask tag, reversed history (Qwen3 style), loop controls.
GENERATION_TAG = """{%- set ns = namespace(last_user=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- if message.role == 'user' and message.content is string and not message.content.startswith('<tool_response>') %}
        {%- set ns.last_user = (messages|length - 1) - loop.index0 %}
        {%- break %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.role == 'assistant' %}
        {{- '<|im_start|>assistant\\n' }}{% generation %}{{- message.content | trim }}{% endgeneration %}{{- '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>' ~ message.role ~ '\\n' ~ message.content ~ '<|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- for i in range(3) %}{{ '_' * 3 }}{{ message|attr('content') if message is defined }}{% endfor %}
"""

#: Templates real models ship; every one must scan clean.
BENIGN_TEMPLATES: dict[str, str] = {
    "chatml": CHATML,
    "llama-3": LLAMA_3,
    "mistral": MISTRAL,
    "qwen2.5-tools": QWEN2_5_TOOLS,
    "gemma": GEMMA,
    "generation-tag": GENERATION_TAG,
}

# CVE-2024-34359 (llama-cpp-python renders GGUF chat templates without a sandbox).
CVE_2024_34359 = (
    '{% for x in ().__class__.__base__.__subclasses__() %}{% if "warning" in x.__name__ %}'
    "{{x()._module.__builtins__['__import__']('os').popen(\"true\")}}{%endif%}{% endfor %}"
)

#: Attack templates -> the rule id that must fire (at least) for each.
ATTACK_TEMPLATES: dict[str, tuple[str, str]] = {
    "cve-2024-34359": (CVE_2024_34359, "MS-TEMPLATE-PYTHON-INTERNALS"),
    "cycler-globals": (
        "{{ cycler.__init__.__globals__.os.popen('true').read() }}",
        "MS-TEMPLATE-PYTHON-INTERNALS",
    ),
    "joiner-globals": (
        "{{ joiner.__init__.__globals__.os.popen('true').read() }}",
        "MS-TEMPLATE-PYTHON-INTERNALS",
    ),
    "namespace-globals": (
        "{{ namespace.__init__.__globals__.os.popen('true').read() }}",
        "MS-TEMPLATE-PYTHON-INTERNALS",
    ),
    "lipsum-globals-item": (
        "{{ lipsum.__globals__['os'].popen('true').read() }}",
        "MS-TEMPLATE-PYTHON-INTERNALS",
    ),
    "self-context": (
        "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('true') }}",
        "MS-TEMPLATE-PYTHON-INTERNALS",
    ),
    "attr-hex-escapes": (
        "{{ ()|attr('\\x5f\\x5fclass\\x5f\\x5f')|attr('\\x5f\\x5fbase\\x5f\\x5f') }}",
        "MS-TEMPLATE-PYTHON-INTERNALS",
    ),
    "set-concat-subscript": (
        "{% set a = '__cla' ~ 'ss__' %}{{ ''[a] }}",
        "MS-TEMPLATE-PYTHON-INTERNALS",
    ),
    "inline-concat-subscript": ("{{ ()['__cla' ~ 'ss__'] }}", "MS-TEMPLATE-PYTHON-INTERNALS"),
    "join-built-name": (
        "{{ ''|attr(['_'*2, 'class', '_'*2]|join) }}",
        "MS-TEMPLATE-PYTHON-INTERNALS",
    ),
    "percent-format-name": (
        "{{ ()|attr('%c%c%s%c%c'|format(95, 95, 'class', 95, 95)) }}",
        "MS-TEMPLATE-PYTHON-INTERNALS",
    ),
    "reversed-name": ("{{ ''|attr('__ssalc__'[::-1]) }}", "MS-TEMPLATE-PYTHON-INTERNALS"),
    "dict-keyword-name": (
        "{{ ''|attr(dict(__class__=1)|first) }}",
        "MS-TEMPLATE-PYTHON-INTERNALS",
    ),
    "map-attribute": (
        "{{ messages|map(attribute='__class__')|list }}",
        "MS-TEMPLATE-PYTHON-INTERNALS",
    ),
    "method-format-name": (
        "{{ ()|attr('{}{}class{}{}'.format('_', '_', '_', '_')) }}",
        "MS-TEMPLATE-PYTHON-INTERNALS",
    ),
    "unresolvable-attr": (
        "{% for m in messages %}{{ m|attr(m.content ~ 'x') }}{% endfor %}",
        "MS-TEMPLATE-COMPUTED-NAME",
    ),
    "str-format-field": ("{{ '{0.__class__}'.format(messages) }}", "MS-TEMPLATE-SUSPICIOUS-STRING"),
    "include-file": ("{% include '/etc/hostname' %}", "MS-TEMPLATE-LOADS-TEMPLATES"),
    "flask-config": ("{{ config.items() }}", "MS-TEMPLATE-SSTI-OBJECT"),
    "request-application": (
        "{{ request|attr('application')|attr('\\x5f\\x5fglobals\\x5f\\x5f') }}",
        "MS-TEMPLATE-PYTHON-INTERNALS",
    ),
}
