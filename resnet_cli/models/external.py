"""Networks that resnet-cli does not build itself: the user's own ``nn.Module`` (no torch at import).

A :class:`ModuleSource` says where the module comes from, as plain data::

    path/to/file.py:factory      a Python file (imported: its code runs) and a callable in it
    package.module:factory       an importable module and a callable in it
    torchvision:NAME             torchvision.models.get_model(NAME, weights=None, **kwargs)
    timm:NAME                    timm.create_model(NAME, pretrained=False, **kwargs)

``--kwargs 'depth=50,num_classes=10'`` are the factory's keyword arguments, each value read by
``ast.literal_eval`` (Python literals only: nothing is evaluated). Architecture only: torchvision
and timm are asked for no weights, and ``pretrained``/``weights`` kwargs are refused.

It exposes the same small protocol as :class:`~.spec.ResNetSpec` where it makes sense:
``in_chans``, ``num_classes``, ``input_size`` (C, H, W; None until given or read from the module),
``replace``, ``to_string`` and :meth:`ModuleSource.build`. What only a ResNetSpec can tell (stage
names, output stride, feature_info) is not here: the analyses infer it from the traced forward pass.

Errors: a bad text, a missing file or attribute, bad kwargs, a file that fails to import, a factory
that does not return an ``nn.Module``: :class:`UsageError` (exit 2). A missing torchvision/timm
package: :class:`RuntimeFailure` (exit 1: the command is right, the environment lacks the package,
as for a device that is not there). A factory that raises: :class:`RuntimeFailure` (exit 1).
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import os
import re
import shlex
import sys
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import RuntimeFailure, UsageError

KINDS = ("file", "module", "torchvision", "timm", "object")
#: Keyword arguments that would fetch weights: resnet-cli reads architectures only.
REFUSED_KWARGS = ("pretrained", "weights", "checkpoint_path", "pretrained_cfg_overlay")
SOURCE_FORMS = "path/to/file.py:factory, package.module:factory, torchvision:NAME or timm:NAME"
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9_][\w.\-]*$")


def is_source(text: str) -> bool:
    """Whether a variant text names an external module: a ``:`` before any ``(`` (spec strings have none)."""
    return isinstance(text, str) and ":" in text.split("(", 1)[0]


@dataclass(frozen=True)
class ModuleSource:
    """Where a user's ``nn.Module`` comes from.

    Attributes:
        kind: ``file``, ``module``, ``torchvision``, ``timm`` (or ``object`` for a module handed to the
            Python API, which cannot be rebuilt from this record).
        target: the file path, the module's dotted name, or the package (torchvision / timm).
        name: the factory's attribute (dotted for ``Class.method``) or the model name.
        kwargs: the factory's keyword arguments as (key, value) pairs, in the order given.
        input_size: (C, H, W) the module takes: from ``--input-size``, or read from the module once
            built (:func:`module_input_size`); None until then.
    """

    kind: str
    target: str
    name: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    input_size: Optional[tuple[int, int, int]] = None

    @property
    def in_chans(self) -> Optional[int]:
        return self.input_size[0] if self.input_size else None

    @property
    def num_classes(self) -> Optional[int]:
        return dict(self.kwargs).get("num_classes")

    def replace(self, **changes) -> "ModuleSource":
        return dataclasses.replace(self, **changes)

    def label(self) -> str:
        """``file.py:factory`` / ``timm:NAME``: how the user wrote it."""
        return f"{self.target}:{self.name}" if self.kind in ("file", "module", "object") else f"{self.kind}:{self.name}"

    def to_string(self) -> str:
        """The command-line words that rebuild it: ``timm:NAME --kwargs '...' --input-size C,H,W``."""
        words = [self.label()]
        if self.kwargs:
            words += ["--kwargs", shlex.quote(",".join(f"{k}={v!r}" for k, v in self.kwargs))]
        if self.input_size:
            words += ["--input-size", ",".join(map(str, self.input_size))]
        return " ".join(words)

    def build(self):
        """Import and call the factory; returns the ``nn.Module`` in eval mode, on the CPU.

        For ``file``: the file is imported, so its code runs (as ``python file.py`` would run it).

        Raises:
            UsageError: a file or module that cannot be imported, a missing attribute, kwargs the factory
                does not take, an unknown torchvision/timm name, a result that is not an ``nn.Module``.
            RuntimeFailure: torchvision/timm not installed; the factory raised.
        """
        import torch

        factory, where = self._factory()
        kwargs = dict(self.kwargs)
        if self.kind in ("file", "module"):
            _check_signature(factory, kwargs, where)
        try:
            with torch.device("cpu"):
                module = factory(**kwargs)
        except KeyboardInterrupt:
            raise
        except TypeError as err:
            if "unexpected keyword argument" in str(err) or "got multiple values" in str(err):
                raise UsageError(f"--kwargs do not fit {where}: {_first_line(err)}") from None
            raise RuntimeFailure(f"{where} raised TypeError: {_first_line(err)}") from None
        except Exception as err:  # noqa: BLE001  (the user's code: any error is theirs, one line)
            raise RuntimeFailure(f"{where} raised {type(err).__name__}: {_first_line(err)}") from None
        if not isinstance(module, torch.nn.Module):
            raise UsageError(f"{where} returned {type(module).__name__}, not a torch.nn.Module: point at a "
                             "function or class that builds the network")
        return module.eval()

    def _factory(self):
        if self.kind == "file":
            return _attribute(_import_file(self.target), self.name, self.target), f"{self.target}:{self.name}"
        if self.kind == "module":
            return _attribute(_import_module(self.target), self.name, self.target), f"{self.target}:{self.name}"
        if self.kind == "torchvision":
            return _torchvision(self.name), f"torchvision:{self.name}"
        if self.kind == "timm":
            return _timm(self.name), f"timm:{self.name}"
        raise UsageError(f"{self.label()} is a module object handed to the Python API; it cannot be rebuilt")


def parse_source(text: str, kwargs: Optional[str] = None, input_size=None, **overrides) -> tuple[str, ModuleSource]:
    """``(display name, ModuleSource)`` of a text with a ``:`` (see the module docstring); no torch.

    ``kwargs``: the ``--kwargs`` text; ``input_size``: ``'C,H,W'`` or a (C, H, W) tuple.

    Raises:
        UsageError: an empty factory or name, a file that does not exist, bad kwargs or input size, a
            ResNetSpec override such as ``in_chans`` (``--in-chans``: the factory's own kwargs say that).
    """
    given = [k for k, v in overrides.items() if v is not None]
    prefix, _, name = text.strip().rpartition(":")  # the last ':' (a Windows drive keeps its own)
    prefix, name = prefix.strip(), name.strip()
    if given:
        raise UsageError(_override_hint(given[0], overrides[given[0]], text.strip(), prefix, name))
    pairs = parse_kwargs(kwargs)
    size = parse_input_size(input_size) if input_size is not None else None
    if prefix in ("timm", "torchvision"):
        if not _MODEL_NAME.match(name):
            raise UsageError(f"{text.strip()!r} has no model name after '{prefix}:'; e.g. {prefix}:resnet50")
        refused = [k for k, _ in pairs if k in REFUSED_KWARGS]
        if refused:
            raise UsageError(f"--kwargs {refused[0]}=... is refused: resnet-cli reads architectures only and never "
                             "downloads weights (load a checkpoint with --weights FILE on a built-in variant)")
        return text.strip(), ModuleSource(prefix, prefix, name, pairs, size)
    if not prefix or not _DOTTED.match(name):
        raise UsageError(f"cannot read {text.strip()!r} as a network: expected {SOURCE_FORMS} "
                         "(the factory a function or class name)")
    if prefix.endswith(".py") or "/" in prefix or os.sep in prefix:
        if not os.path.isfile(prefix):
            raise UsageError(f"no such file {prefix!r} (in {text.strip()!r}): give the path to a .py file")
        return text.strip(), ModuleSource("file", prefix, name, pairs, size)
    if not _DOTTED.match(prefix):
        raise UsageError(f"cannot read {text.strip()!r} as a network: {prefix!r} is neither a .py file nor a "
                         f"dotted module name; expected {SOURCE_FORMS}")
    return text.strip(), ModuleSource("module", prefix, name, pairs, size)


# The keyword a factory is likely to use for a ResNetSpec override, most usual first (timm: in_chans,
# num_classes; torchvision: num_classes; smp and many hand-written nets: in_channels, classes).
_OVERRIDE_KEYWORDS = {"in_chans": ("in_chans", "in_channels", "in_ch", "input_channels"),
                      "num_classes": ("num_classes", "classes", "n_classes", "num_labels")}


def _override_hint(key: str, value: Any, text: str, prefix: str, name: str) -> str:
    """The message refusing ``--in-chans`` / ``--num-classes`` on a user's network, naming the factory's own
    keyword where its signature can be read without running anything (a .py file's source, read with ``ast``;
    timm's ``create_model`` keywords), else a generic hint."""
    flag = "--" + key.replace("_", "-")
    head = f"{flag} applies to the built-in ResNets; for {text}"
    params = _factory_params(prefix, name)
    candidates = _OVERRIDE_KEYWORDS.get(key, (key,))
    found = next((c for c in candidates if params is not None and c in params), None)
    if found is not None:
        return f"{head} pass the factory's own argument: --kwargs '{found}={value!r}'"
    if params is not None and prefix not in ("timm", "torchvision"):
        names = ", ".join(params) if params else "none"
        return (f"{head} pass the factory's own argument in --kwargs; its signature has no "
                f"{'/'.join(candidates[:2])} (its arguments: {names})")
    return (f"{head} pass the factory's own argument in --kwargs, e.g. --kwargs '{candidates[0]}={value!r}' "
            f"if it takes {candidates[0]}")


def _factory_params(prefix: str, name: str) -> Optional[tuple[str, ...]]:
    """The keyword names of ``prefix:name`` read without importing it: for a .py file, its source parsed with
    ``ast`` (a function's parameters, a class's ``__init__`` parameters minus ``self``); for ``timm`` the
    ``in_chans`` and ``num_classes`` that ``timm.create_model`` passes to every model. None when not readable
    (a dotted module, torchvision, a name made at run time, a ``**kwargs`` factory)."""
    if prefix == "timm":
        return ("in_chans", "num_classes")
    if not (prefix.endswith(".py") and os.path.isfile(prefix)):
        return None
    try:
        with open(prefix, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return None
    body, node = tree.body, None
    for part in name.split("."):
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == part), None)
        if node is None:
            return None
        body = node.body
    drop_first = isinstance(node, ast.ClassDef) or "." in name
    if isinstance(node, ast.ClassDef):
        node = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        if node is None:
            return None
    if node.args.kwarg is not None:
        return None
    args = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
    if drop_first and args and args[0] in ("self", "cls"):
        args = args[1:]
    return tuple(args + [a.arg for a in node.args.kwonlyargs])


def parse_kwargs(text: Optional[str]) -> tuple[tuple[str, Any], ...]:
    """``'depth=50, num_classes=10, act="relu", layers=(3, 4, 6, 3)'`` -> (key, value) pairs.

    The text is parsed (``ast.parse``) as the argument list of a call; each value is read with
    ``ast.literal_eval``, so only Python literals are accepted and nothing runs.

    Raises:
        UsageError: not ``key=value`` items, a value that is not a literal, a key given twice.
    """
    if text is None or not str(text).strip():
        return ()
    example = "e.g. --kwargs 'depth=50,num_classes=10,act_layer=\"relu\"'"
    try:
        call = ast.parse(f"f({text})", mode="eval").body
    except SyntaxError:
        raise UsageError(f"--kwargs {text!r} is not a list of key=value items; {example}") from None
    if not isinstance(call, ast.Call) or call.args or any(k.arg is None for k in call.keywords):
        raise UsageError(f"--kwargs {text!r} must be key=value items only (no positional or ** items); {example}")
    pairs, seen = [], set()
    for kw in call.keywords:
        if kw.arg in seen:
            raise UsageError(f"--kwargs {text!r} gives {kw.arg} twice; give each key once")
        seen.add(kw.arg)
        try:
            value = ast.literal_eval(kw.value)
        except (ValueError, SyntaxError, TypeError):
            # A bare word (act=relu) was most likely meant as a string: show it quoted. Anything else (a call,
            # an attribute, an operator) is not offered as a string, since quoting it would only mislead.
            hint = (f"quote strings: {kw.arg}=\"{kw.value.id}\"" if isinstance(kw.value, ast.Name)
                    else "calls, names and expressions are never run")
            raise UsageError(f"--kwargs {kw.arg}={ast.unparse(kw.value)} is not a Python literal (numbers, quoted "
                             f"strings, True/False/None, tuples, lists, dicts); {hint}") from None
        pairs.append((kw.arg, value))
    return tuple(pairs)


def parse_input_size(value) -> tuple[int, int, int]:
    """``'3,224,224'`` (or ``3x224x224``, or a 3-tuple) -> (C, H, W).

    Raises:
        UsageError: anything but three positive integers.
    """
    parts = list(value) if isinstance(value, (tuple, list)) else re.split(r"[,x]", str(value).strip().lower())
    try:
        ints = tuple(int(p) if not isinstance(p, bool) else -1 for p in parts)
    except (TypeError, ValueError):
        ints = ()
    if len(ints) != 3 or min(ints) < 1:
        raise UsageError(f"--input-size {value!r} is not C,H,W: give three positive integers, e.g. 3,224,224")
    return ints


def module_input_size(module, given: Optional[tuple[int, int, int]] = None,
                      hw: Optional[tuple[int, int]] = None) -> tuple[tuple[int, int, int], Optional[str]]:
    """(C, H, W) a module takes, and a note saying where it came from (None when given or certain).

    In order: ``given`` (``--input-size``); the module's own ``pretrained_cfg`` / ``default_cfg``
    ``input_size`` (timm); the ``spec`` of a resnet-cli network; else the first convolution's
    ``in_channels`` and 224 x 224 (ImageNet's usual size), with a note (naming ``hw``, the --size
    to be used, when given).

    Raises:
        UsageError: none of these: the module has no convolution and says nothing.
    """
    import torch

    if given is not None:
        return tuple(given), None
    conv = next((m for m in module.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)), None)
    for attr in ("pretrained_cfg", "default_cfg"):
        cfg = getattr(module, attr, None)
        size = cfg.get("input_size") if isinstance(cfg, dict) else None
        if isinstance(size, (tuple, list)) and len(size) == 3 and all(isinstance(v, int) for v in size):
            size = tuple(size)
            if conv is not None and conv.in_channels != size[0]:  # timm keeps the cfg's 3 after in_chans=1
                size = (conv.in_channels, *size[1:])
                return size, (f"input size {'x'.join(map(str, size))} (C x H x W): H x W from the module's {attr} "
                              "(timm), channels from its first conv")
            return size, f"input size {'x'.join(map(str, size))} (C x H x W) from the module's {attr} (timm)"
    spec_size = getattr(getattr(module, "spec", None), "input_size", None)
    if isinstance(spec_size, tuple) and len(spec_size) == 3:
        return spec_size, None
    if conv is None:
        raise UsageError(f"cannot tell the input of this {type(module).__name__}: it has no convolution and no "
                         "pretrained_cfg; give --input-size C,H,W")
    size = (conv.in_channels, 224, 224)
    if hw is not None:  # --size gave H x W: the note names the input used
        return size, (f"input {conv.in_channels} x {hw[0]} x {hw[1]} (C x H x W): C assumed from the first conv's "
                      "in_channels (the module does not tell), H x W from --size; give --input-size C,H,W")
    return size, (f"input {conv.in_channels} x 224 x 224 (C x H x W) assumed: the first conv's in_channels, and "
                  "224 x 224 unless --size says otherwise (the module does not tell); give --input-size C,H,W")


# ------------------------------------------------------------------------------------ internals
def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _import_file(path: str):
    import importlib.util

    name = "resnet_cli_user_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == os.path.abspath(path):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, os.path.abspath(path))
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {path!r}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    folder = os.path.dirname(os.path.abspath(path))
    added = folder not in sys.path
    if added:  # its sibling imports work, as under `python file.py`
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001  (SyntaxError, ImportError, SystemExit, the file's own errors)
        del sys.modules[name]
        where = f" (line {err.lineno})" if isinstance(err, SyntaxError) and err.lineno else ""
        raise UsageError(f"cannot import {path!r}{where}: {type(err).__name__}: {_first_line(err)}") from None
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)
    return module


def _import_module(dotted: str):
    import importlib

    try:
        return importlib.import_module(dotted)
    except KeyboardInterrupt:
        raise
    except ModuleNotFoundError as err:
        if err.name and dotted.startswith(err.name):
            raise UsageError(f"no module named {err.name!r} (in {dotted}): give an importable module, or a path "
                             "ending in .py") from None
        raise UsageError(f"cannot import {dotted!r}: ModuleNotFoundError: {_first_line(err)}") from None
    except BaseException as err:  # noqa: BLE001
        raise UsageError(f"cannot import {dotted!r}: {type(err).__name__}: {_first_line(err)}") from None


def _attribute(module, dotted: str, where: str):
    obj = module
    for part in dotted.split("."):
        if not hasattr(obj, part):
            names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else (
                f"; callables there: {', '.join(sorted(names)[:8])}" if names else "")
            raise UsageError(f"{where!r} has no attribute {dotted!r}{hint}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"{where}:{dotted} is a {type(obj).__name__}, not a callable that builds a network")
    return obj


def _check_signature(factory, kwargs: dict, where: str) -> None:
    import inspect

    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return  # a builtin without a signature: the call will tell
    try:
        signature.bind(**kwargs)
    except TypeError as err:
        raise UsageError(f"--kwargs do not fit {where}{signature}: {err}") from None


def _torchvision(name: str):
    try:
        import torchvision.models as tvm
    except ImportError as err:
        raise RuntimeFailure(f"torchvision:{name} needs the torchvision package, which cannot be imported here "
                             f"({_first_line(err)}); install it (pip install torchvision) or use a built-in "
                             "variant") from None
    names = tvm.list_models()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see torchvision.models.list_models()"
        raise UsageError(f"torchvision has no model {name!r}: {hint}")
    return lambda **kwargs: tvm.get_model(name, weights=None, **kwargs)


def _timm(name: str):
    try:
        import timm
    except ImportError as err:
        raise RuntimeFailure(f"timm:{name} needs the timm package, which cannot be imported here "
                             f"({_first_line(err)}); install it (pip install timm) or use a built-in variant") from None
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see timm.list_models()"
        raise UsageError(f"timm has no model {name!r}: {hint}")
    return lambda **kwargs: timm.create_model(name, pretrained=False, **kwargs)
