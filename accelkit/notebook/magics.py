"""The ``%accel`` magics: ``devices``, ``use``, ``memory``, ``profile`` (line or cell) and ``bench``.

Registered by ``%load_ext accelkit``. Each sub-command's options are parsed with IPython's
``magic_arguments``; ``%accel help CMD`` or ``%accel CMD -h`` prints them. Mistakes (an unknown
command, a bad option, an unknown device) end in a one-line UsageError, not a traceback.

>>> %%accel profile --top 5 --trace run.json -o prof
... model(**inputs)
"""

from __future__ import annotations

import argparse
import importlib
import json
import re

from IPython.core import magic_arguments as ma
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display

from ..errors import AccelkitError
from ..hardware import DeviceList, MemoryReport, device, devices, set_default
from ..profiler import TimelinePlot, profile, timeline_png
from .kernel import kernel_is_live

# ------------------------------------------------------------------------------------- sub-commands
# Each function below only carries its parser (magic_arguments builds it from the decorators).


@ma.magic_arguments(name="accel devices")
@ma.argument("--json", action="store_true", help="print every device's describe() as JSON instead")
def _devices_cmd(line):
    """List every usable device, best first, the default one marked (a table in notebooks)."""


@ma.magic_arguments(name="accel use")
@ma.argument(
    "spec",
    metavar="SPEC",
    help="the device for ak.device() to return: cpu, webgpu, webgpu:N; auto restores ranking",
)
def _use_cmd(line):
    """Make SPEC the default device (accelkit.hardware.set_default)."""


@ma.magic_arguments(name="accel memory")
@ma.argument(
    "specs",
    nargs="*",
    metavar="SPEC",
    help="devices to show (default: the default device and every open one)",
)
@ma.argument("--reset-peak", action="store_true", help="then start counting the peak afresh")
def _memory_cmd(line):
    """Device memory held by live tensors: allocated, peak, reserved and cached bytes, buffer counts."""


@ma.magic_arguments(name="accel profile")
@ma.argument(
    "--top", type=int, default=None, metavar="N", help="kernels in the table (default: options().top)"
)
@ma.argument(
    "--trace", default=None, metavar="FILE", help="also write a chrome trace (Perfetto, chrome://tracing)"
)
@ma.argument(
    "-o", "--output", default=None, metavar="NAME", help="store the Profile in the namespace as NAME"
)
@ma.argument("--device", default=None, metavar="SPEC", help="device to profile (default: the default device)")
@ma.argument("--label", default="cell", help="the profile's label (shown in the trace)")
@ma.argument(
    "--plot", dest="plot", action="store_true", default=None, help="show the timeline (default: in a kernel)"
)
@ma.argument("--no-plot", dest="plot", action="store_false", help="do not show the timeline")
@ma.argument("-q", "--quiet", action="store_true", help="show nothing and return None (use with -o)")
def _profile_cmd(line):
    """Run the cell (or, as a line magic, the statement after the options) under accelkit.profile;
    show and return the Profile, like %timeit -o: kernel table, timeline plot (matplotlib), and a
    chrome trace with --trace."""


@ma.magic_arguments(name="accel bench")
@ma.argument("what", metavar="WHAT", help="which benchmark: ops, models, pool or sharing")
@ma.argument("args", nargs=argparse.REMAINDER, help="its own arguments (as for `accelkit bench WHAT ...`)")
def _bench_cmd(line):
    """Run accelkit.bench.WHAT.main(args) (what `accelkit bench WHAT` runs)."""


def _usage(fn) -> str:
    """A sub-command's help, without the reST code-block marker magic_arguments puts before it."""
    return fn.parser.format_help().replace("::\n\n  %", "%", 1)


COMMANDS = {
    "devices": _devices_cmd,
    "use": _use_cmd,
    "memory": _memory_cmd,
    "profile": _profile_cmd,
    "bench": _bench_cmd,
}

ACCEL_HELP = (
    "accelkit in notebooks.\n\n"
    "  %accel devices            every device, best first\n"
    "  %accel use SPEC           make SPEC the default device\n"
    "  %accel memory [SPEC ...]  device memory as bars\n"
    "  %%accel profile [opts]    profile the cell; returns the Profile\n"
    "  %accel profile STATEMENT  profile one statement\n"
    "  %accel bench WHAT [args]  run a benchmark (ops, models, pool, sharing)\n"
    "  %accel help [COMMAND]     this text, or a command's options\n\n"
    + "\n".join(_usage(fn) for fn in COMMANDS.values())
)


def strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment``: a ``#`` outside quotes that starts a word.

    IPython hands a line magic its whole line, comment included (``%accel devices   # list them``);
    a ``#`` inside quotes or inside a word (``--trace run#1.json``) is kept.
    """
    quote, escaped = None, False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif quote:
            escaped = ch == "\\"
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line


def _split(line: str) -> tuple[str, str]:
    head, _, rest = strip_comment(line).strip().partition(" ")
    return head, rest.strip()


def _wants_help(rest: str) -> bool:
    return any(tok in ("-h", "--help") for tok in ma.arg_split(rest))


def _options_and_statement(parser, rest: str) -> tuple[str, str]:
    """Split ``--top 3 -o p model(x, "a b")`` into the leading options and the statement, which is
    kept exactly as typed (quotes and all)."""
    takes_value = {o for a in parser._actions if a.nargs != 0 for o in a.option_strings}
    pos, expect_value = 0, False
    for m in re.finditer(r"\S+", rest):
        tok = m.group()
        if expect_value:
            expect_value = False
        elif tok.startswith("-") and not tok.lstrip("-")[:1].isdigit():
            expect_value = tok in takes_value
        else:
            return rest[: m.start()], rest[m.start() :]
        pos = m.end()
    return rest[:pos], ""


@magics_class
class AccelMagics(Magics):
    """``%accel`` / ``%%accel``: devices, use, memory, profile, bench."""

    @line_cell_magic
    def accel(self, line: str = "", cell: str | None = None):
        cmd, rest = _split(line)
        if cmd in ("", "help", "-h", "--help"):
            target = COMMANDS.get(rest.split()[0]) if rest else None
            print(_usage(target) if target else ACCEL_HELP)
            return None
        parser_fn = COMMANDS.get(cmd)
        if parser_fn is None:
            raise UsageError(
                f"%accel: unknown command {cmd!r}; expected one of {', '.join(COMMANDS)} (or help)"
            )
        if cell is not None and cmd != "profile":
            raise UsageError(
                f"%%accel {cmd}: only `%%accel profile` takes a cell; use `%accel {cmd}` on a line"
            )
        if _wants_help(rest) and cmd != "bench":
            print(_usage(parser_fn))
            return None
        statement = ""
        if cmd == "profile" and cell is None:
            rest, statement = _options_and_statement(parser_fn.parser, rest)
        try:
            args = ma.parse_argstring(parser_fn, rest)
        except UsageError as exc:
            raise UsageError(f"%accel {cmd}: {exc}\n{_usage(parser_fn).splitlines()[0]}") from None
        args.statement = statement
        try:
            return getattr(self, f"_{cmd}")(args, cell)
        except AccelkitError as exc:
            raise UsageError(f"%accel {cmd}: {exc}") from None

    accel.__doc__ = ACCEL_HELP

    # ---------------------------------------------------------------------------- commands
    def _devices(self, args, cell):
        devs = DeviceList(devices())
        if args.json:
            print(json.dumps([d.describe() for d in devs], indent=2, default=str))
            return None
        return devs

    def _use(self, args, cell):
        spec = None if args.spec.lower() in ("auto", "none", "best", "default") else args.spec
        dev = set_default(spec)
        why = f" ({dev.fallback_reason})" if dev.fallback_reason else ""
        how = "ranking restored; the best is" if spec is None else "default device:"
        print(f"{how} {dev.spec}: {dev.name}{why}")
        return None

    def _memory(self, args, cell):
        if args.specs:
            devs = [device(s) for s in args.specs]
        else:
            default = device()
            devs = [default] + [d for d in devices() if d.is_open and d is not default]
        return MemoryReport.of(devs, reset_peak=args.reset_peak)

    def _profile(self, args, cell):
        code = cell if cell is not None else args.statement
        if not code.strip():
            raise UsageError(
                "%accel profile: nothing to run; give a statement, or use %%accel profile on a cell"
            )
        if args.top is not None and args.top < 1:
            raise UsageError(f"%accel profile: --top must be at least 1, got {args.top}")
        if args.output is not None and not args.output.isidentifier():
            raise UsageError(f"%accel profile: -o needs a Python name, got {args.output!r}")
        compiled = self._compile(code)
        ctx = profile(device(args.device), label=args.label)
        try:
            with ctx:
                exec(compiled, self.shell.user_global_ns, self.shell.user_ns)
        finally:  # a cell that raised still leaves its (partial) profile under NAME
            if args.output is not None and ctx.result is not None:
                self.shell.user_ns[args.output] = ctx.result
        prof = ctx.result
        if args.top is not None:
            prof.display_top = args.top  # the table that shows it (and its HTML) lists this many kernels
        if args.trace:
            path = prof.save_trace(args.trace)
            print(
                f"chrome trace: {path} ({len(prof.records)} dispatches); open it in https://ui.perfetto.dev"
            )
        if args.quiet:
            return None
        plot = args.plot if args.plot is not None else kernel_is_live()
        if plot:
            png = timeline_png(prof)
            if png is not None:
                display(TimelinePlot(prof, png))
        return prof

    def _compile(self, code: str):
        """Compile like IPython runs a cell (magics and !shell inside it work, tracebacks show source)."""
        shell = self.shell
        transformed = shell.transform_cell(code)
        try:
            filename = shell.compile.cache(transformed, shell.execution_count, raw_code=code)
        except TypeError:  # IPython < 8: no raw_code
            filename = shell.compile.cache(transformed, shell.execution_count)
        tree = shell.compile.ast_parse(transformed, filename=filename)
        tree = shell.transform_ast(tree)
        return shell.compile(tree, filename, "exec")

    def _bench(self, args, cell):
        name = f"accelkit.bench.{args.what}"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name in ("accelkit.bench", name):
                raise UsageError(
                    f"%accel bench {args.what}: {name} is not in this install of accelkit (that benchmark has "
                    f"not been written yet, or the name is wrong; known: ops, models, pool, sharing)"
                ) from None
            raise
        main = getattr(module, "main", None)
        if main is None:
            raise UsageError(f"%accel bench {args.what}: {name} has no main(args) function")
        try:
            code = main(list(args.args))
        except SystemExit as exc:  # argparse inside the benchmark (--help, a bad option)
            code = exc.code
        if code not in (None, 0):
            print(f"accelkit bench {args.what} exited with status {code}")
        return None


__all__ = ["ACCEL_HELP", "AccelMagics", "COMMANDS", "strip_comment"]
