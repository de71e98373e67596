"""A process's program, the key its memory is totalled under: a worker pool whose workers
are recycled with new PIDs is one program, and so is every postgres backend.

The program is the base name of the executable (the first word of CMD, its path and a
trailing ':' dropped, as php-fpm, postgres and nginx retitle their workers: "php-fpm: pool
www" is php-fpm). For an interpreter it is the script or jar it runs: "python3 train.py"
is train.py, "java -jar /srv/orders.jar" is orders.jar, "python3 -m celery worker" is
celery. `env VAR=1 cmd` is cmd's program. Kernel threads ("[kworker/0:1]") are one group.
"""

from __future__ import annotations

import functools
import re

KERNEL_THREADS = "[kernel threads]"
NO_COMMAND = "(no command line)"
# python3.11, php8.2, node18: an interpreter's versioned names are the interpreter.
_INTERPRETER = re.compile(r"(python|pypy|node|nodejs|java|ruby|perl|php|sh|bash|dash|zsh)[0-9.]*")
# Options that take the next word as their value, per interpreter (python -W x, java -cp x,
# node -r x, perl -I x): that word is never the script.
_VALUE_OPTIONS = {
    "python": {"-W", "-X", "--check-hash-based-pycs"},
    "pypy": {"-W", "-X"},
    "node": {"-r", "--require", "--import", "--loader", "--inspect-port"},
    "nodejs": {"-r", "--require"},
    "java": {"-cp", "-classpath", "--class-path", "-p", "--module-path", "--add-modules"},
    "ruby": {"-I", "-r", "-C"},
    "perl": {"-I", "-M", "-m"},
    "php": {"-c", "-d", "-z"},
}
# Options after which the program is the interpreter itself: code given inline.
_INLINE = {"-c", "-e", "-E", "--eval", "-p", "--print", "-r"}


@functools.lru_cache(maxsize=65536)
def program_of(cmd: str) -> str:
    """The program of a command line as ps prints it (see the module's docstring)."""
    text = cmd.strip()
    if not text:
        return NO_COMMAND
    if text.startswith("[") and text.endswith("]"):
        return KERNEL_THREADS
    words = text.split()
    if _base(words[0]) == "env":
        words = _after_env(words[1:])
        if not words:
            return "env"
    head = _base(words[0])
    match = _INTERPRETER.fullmatch(head)
    if match is None:
        return head or NO_COMMAND
    return _script(match.group(1), words[1:]) or head


def _base(word: str) -> str:
    return word.rsplit("/", 1)[-1].removesuffix(":")


def _after_env(words: list[str]) -> list[str]:
    """The command env runs: after its options and VAR=value words."""
    rest = list(words)
    while rest and (rest[0].startswith("-") or "=" in rest[0]):
        option = rest.pop(0)
        if option in ("-u", "--unset", "-C", "--chdir", "-S") and rest:
            rest.pop(0)
    return rest


def _script(interpreter: str, words: list[str]) -> str | None:
    """The script, module or jar an interpreter runs; None when it runs inline code or
    nothing (an interactive shell)."""
    value_options = _VALUE_OPTIONS.get(interpreter, set())
    rest = iter(words)
    for word in rest:
        if interpreter == "java" and word == "-jar":
            return _base(next(rest, "")) or None
        if interpreter in ("python", "pypy") and word == "-m":
            module = next(rest, "")
            return module.split(".")[0] or None
        if word in value_options:  # php -c is its ini file, node -r a module to preload
            next(rest, None)
            continue
        if word in _INLINE and not (interpreter == "java" and word == "-p"):
            return None
        if word.startswith("-"):
            continue
        return _base(word) or None
    return None


def safe_file_part(name: str) -> str:
    """A program name as part of a file name: letters, digits, '.', '_' and '-' only, at
    most 60 characters (`[kernel threads]` is `kernel_threads`)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_.") or "unnamed"
    return safe[:60]
