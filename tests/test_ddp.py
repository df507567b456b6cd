"""``bench --mode train --nproc N``: two gloo ranks on the CPU for a CIFAR net (resnet20 at 32x32, a few
steps): the run finishes with both ranks gathered, the gradients were all-reduced (the ranks' weights are
bit-identical after training on different batches), --save writes one line per rank count, a rank that
raises or hangs ends the run with exit 1 naming it; plus the option checks and the watchdog's rule."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from resnet_cli.bench.ddp_watch import hang_verdict
from resnet_cli.bench.distributed import CHECKSUM_ENV, FAULT_ENV
from resnet_cli.cli import app

RUN = ["bench", "resnet20", "--size", "32", "--batch", "4", "--iters", "3", "--warmup", "1", "--mode", "train",
       "--nproc", "2", "--threads", "1"]


def invoke(*args):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    save = tmp_path_factory.mktemp("ddp") / "runs.jsonl"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CHECKSUM_ENV, "1")  # the ranks inherit the environment
        result = invoke(*RUN, "--save", str(save), "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout), [json.loads(line) for line in save.read_text().splitlines()]


def test_both_ranks_are_gathered(two_ranks):
    data, _ = two_ranks
    assert data["world_size"] == 2 and data["nproc_per_node"] == 2 and data["backend"] == "gloo"
    assert data["batch_per_rank"] == 4 and data["global_batch"] == 8 and data["threads_per_rank"] == 1
    assert [r["rank"] for r in data["ranks"]] == [0, 1]
    assert [r["local_rank"] for r in data["ranks"]] == [0, 1]
    for r in data["ranks"]:
        assert r["world_size"] == 2 and r["iterations"] == 3 and r["threads"] == 1 and r["complete"] is True
        lat = r["latency_ms"]
        assert 0 < lat["min"] <= lat["median"] <= lat["max"]
        assert r["images_per_sec"] == pytest.approx(4 / (lat["median"] / 1e3), rel=1e-9)
    assert data["images_per_sec"] == pytest.approx(sum(r["images_per_sec"] for r in data["ranks"]), rel=1e-9)
    for r in data["ranks"] + [data["baseline"]]:  # the step's FLOPs are bench --mode train's count
        assert r["tflops"] == pytest.approx(data["flops_per_step"] / (r["latency_ms"]["median"] / 1e3) / 1e12, rel=1e-9)
    base = data["baseline"]
    assert base["world_size"] == 1 and base["rank"] == 0 and base["iterations"] == 3
    assert data["scaling_efficiency"] == pytest.approx(
        data["images_per_sec"] / (2 * base["images_per_sec"]), rel=1e-9)


def test_gradients_were_all_reduced(two_ranks):
    """Each rank trains on its own random batch; only the all-reduce keeps their weights equal."""
    import torch

    from resnet_cli.bench.ddp_rank import _build, checksum
    from resnet_cli.bench.distributed import DdpJob
    from resnet_cli.models import resolve

    data, _ = two_ranks
    sums = {r["param_checksum"] for r in data["ranks"]}
    assert len(sums) == 1 and None not in sums
    name, spec = resolve("resnet20")
    job = DdpJob(variant=name, spec=spec, state_dict=None, strict=True, device_type="cpu", backend="gloo",
                 dtype="fp32", amp=None, optimizer="sgd", channels_last=False, compile_mode=None, batch=4,
                 size=(32, 32), warmup=1, iters=3, min_time_s=0.0, threads=1, timeout_s=60, baseline=False)
    initial = _build(job, torch.device("cpu"))
    from resnet_cli.analysis.training import count_train_macs

    assert data["flops_per_step"] == 2 * count_train_macs(initial, (4, 3, 32, 32), "sgd").total_macs
    assert checksum(initial) not in sums  # the steps did change the weights
    count = sum(p.numel() for p in initial.parameters())
    for r in data["ranks"]:  # every fp32 gradient went through the hook, in DDP's buckets
        comm = r["allreduce"]
        assert comm["bytes_per_step"] == 4 * count and comm["buckets"] >= 1
        assert 0 < comm["latency_ms"]["median"] and 0 < comm["share"] <= 1


def test_save_has_one_line_per_rank_count(two_ranks):
    data, lines = two_ranks
    assert [line["world_size"] for line in lines] == [1, 2]
    assert all(line["mode"] == "train" and line["variant"] == "resnet20" for line in lines)
    assert lines[1]["result"]["images_per_sec"] == pytest.approx(data["images_per_sec"], rel=1e-5)
    assert lines[0]["result"]["images_per_sec"] == pytest.approx(data["baseline"]["images_per_sec"], rel=1e-5)
    assert lines[1]["result"]["batch_size"] == 8 and lines[0]["result"]["batch_size"] == 4
    assert lines[1]["scaling_efficiency"] == pytest.approx(data["scaling_efficiency"], rel=1e-5)


def test_a_rank_that_raises_ends_the_run(monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "1:raise")
    result = invoke(*RUN, "--no-baseline")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("resnet-cli: error:")]
    assert len(errors) == 1, result.stderr
    assert "rank 1 failed: RuntimeError: injected test failure in rank 1" in errors[0]
    assert result.stdout == ""


def test_a_rank_that_hangs_ends_the_run_within_the_timeout(monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "1:hang")
    result = invoke(*RUN, "--no-baseline", "--timeout", "8")
    assert result.exit_code == 1
    assert "resnet-cli: error: rank 1 hung: no progress for 8 s" in result.stderr, result.stderr


@pytest.mark.parametrize("args, needle", [
    (["--nproc", "2"], "give --mode train"),
    (["--mode", "both", "--nproc", "2"], "give --mode train (not both)"),
    (["--mode", "train", "--nproc", "2", "--detail"], "--detail"),
    (["--mode", "train", "--nproc", "2", "--backend", "nccl"], "--backend nccl needs --device cuda"),
    (["--mode", "train", "--nproc", "2", "--batch", "2,4"], "one --batch N"),
    (["--mode", "train", "--nproc", "2", "--device", "cuda:1"], "each rank takes cuda:LOCAL_RANK"),
    (["--mode", "train", "--nproc", "2", "--nnodes", "2"], "needs --master-addr"),
    (["--mode", "train", "--nproc", "2", "--nnodes", "2", "--node-rank", "2", "--master-addr", "h"], "below --nnodes"),
    (["--mode", "train", "--backend", "gloo"], "need --nproc N"),
    (["--mode", "train", "--nproc", "2", "--timeout", "0"], "--timeout"),
    (["--no-baseline"], "--no-baseline times data-parallel training steps: give --mode train"),
    (["--backend", "gloo", "--timeout", "5"], "--backend/--timeout times data-parallel"),
])
def test_usage_errors(args, needle):
    result = invoke("bench", "resnet20", *args)
    assert result.exit_code == 2 and needle in result.stderr, result.stderr


def test_nproc_under_torchrun_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = invoke("bench", "resnet20", "--mode", "train", "--nproc", "2")
    assert result.exit_code == 2 and "drop --nproc" in result.stderr


def _status(rank, beats, at, phase="2 ranks: training steps", waiting=False):
    return {"rank": rank, "beats": beats, "progress_at": at, "phase": phase, "waiting": waiting,
            "raw": {"first_call_ms": 1.0, "warmup_ms": [1.0], "times_ms": []}}


def test_watchdog_blames_the_rank_furthest_behind():
    status = {0: _status(0, 12, 100.0), 1: _status(1, 11, 99.0)}
    assert hang_verdict(status, 2, 0.0, 103.0, 5.0) is None  # rank 0 progressed 3 s ago
    verdict = hang_verdict(status, 2, 0.0, 106.0, 5.0)
    assert verdict.startswith("rank 1 hung: no progress for 5 s") and "after 2 finished training steps" in verdict
    waiting = {0: _status(0, 30, 100.0), 1: _status(1, 3, 100.0, "waiting for rank 0's baseline", waiting=True)}
    assert hang_verdict(waiting, 2, 0.0, 106.0, 5.0).startswith("rank 0 hung")
    same = {0: _status(0, 12, 100.0), 1: _status(1, 12, 100.0)}
    assert "ranks 0, 1 all stopped at the same point" in hang_verdict(same, 2, 0.0, 106.0, 5.0)
    assert hang_verdict({0: _status(0, 1, 1.0)}, 2, 0.0, 6.0, 5.0) is None  # rank 1 may still be importing torch
    assert "local rank 1 did not start within 60 s" in hang_verdict({0: _status(0, 1, 1.0)}, 2, 0.0, 61.0, 5.0)
    done = {0: _status(0, 1, 1.0, "done"), 1: _status(1, 1, 1.0, "done")}
    assert hang_verdict(done, 2, 0.0, 60.0, 5.0) is None


def test_runner_follows_the_shared_decision():
    """Every rank must run as many steps as rank 0: measure() ends a phase when decide() says so,
    whatever this process wished (the wishes are what it passes in)."""
    from resnet_cli.bench.runner import measure

    answers, wishes = iter([False, False, True, False, False, False, True]), []

    def decide(stop):
        wishes.append(stop)
        return next(answers)

    m = measure(lambda: None, lambda step: 1.0, warmup=1, iters=2, decide=decide)
    assert len(m.warmup_ms) == 3 and len(m.times_ms) == 4
    assert wishes[-4:] == [False, True, True, True]  # it wished to stop after 2 timed steps
    m = measure(lambda: None, lambda step: 1.0, warmup=1, iters=5, decide=lambda stop: True)
    assert len(m.warmup_ms) == 1 and len(m.times_ms) == 1


def test_threads_per_rank():
    from resnet_cli.bench.distributed import threads_per_rank

    assert threads_per_rank(None, 2, cpus=2) == 1 and threads_per_rank(None, 4, cpus=2) == 1
    assert threads_per_rank(None, 4, cpus=16) == 4 and threads_per_rank(3, 2, cpus=2) == 3


def test_too_many_ranks_or_threads_name_the_remedy_that_applies():
    from resnet_cli.bench.distributed import oversubscribed

    assert oversubscribed(2, 1, cpus=2) is None and oversubscribed(2, 4, cpus=8) is None
    assert oversubscribed(2, 2, cpus=2).endswith("use fewer --threads")
    crowded = oversubscribed(3, 1, cpus=2)
    assert "3 ranks x 1 threads exceed the 2 logical CPUs" in crowded and "--threads" not in crowded.split(";")[1]
    assert "use --nproc 2 or fewer" in crowded


def _raw(rank, world, times, comm=(1.0, 1.0, 1.0)):
    return {"rank": rank, "local_rank": rank, "host": "h", "device": "cpu", "world_size": world, "batch": 4,
            "first_call_ms": 9.0, "warmup_ms": [5.0], "warmup_stable": True, "times_ms": list(times),
            "allreduce_ms": list(comm), "buckets": 2, "bytes_per_step": 1000, "peak_memory_bytes": None,
            "threads": 1, "checksum": None}


def _head(world=2):
    from resnet_cli.bench.distributed import DdpJob, make_head
    from resnet_cli.models import resolve

    name, spec = resolve("resnet20")
    job = DdpJob(variant=name, spec=spec, state_dict=None, strict=True, device_type="cpu", backend="gloo",
                 dtype="fp32", amp=None, optimizer="sgd", channels_last=False, compile_mode=None, batch=4,
                 size=(32, 32), warmup=1, iters=3, min_time_s=0.0, threads=1, timeout_s=60, baseline=True)
    return make_head(job, world, world, 1, 1)


def test_records_totals_and_rendering():
    """From raw timings to the report and its table/CSV/Markdown/--save, on made-up numbers."""
    from resnet_cli.bench.distributed import assemble, rank_result, with_flops
    from resnet_cli.render import ddp as view
    from resnet_cli.render.export import to_csv, to_markdown

    ranks = [rank_result(_raw(0, 2, [10.0, 20.0, 30.0])), rank_result(_raw(1, 2, [20.0, 20.0, 20.0], (4.0, 5.0, 6.0)))]
    base = rank_result(_raw(0, 1, [8.0, 8.0, 8.0]))
    report = with_flops(assemble(_head(), ranks, base, []), 2_000_000_000, "convention")
    assert report.images_per_sec == pytest.approx(4 / 0.02 + 4 / 0.02)
    assert report.scaling_efficiency == pytest.approx(400 / (2 * 500))
    assert ranks[1].allreduce.share == pytest.approx(5.0 / 20.0) and report.ranks[0].tflops == pytest.approx(0.1)
    rows = view.rows(report)
    assert [r["rank"] for r in rows] == ["0", "1", "1 process"] and rows[0]["scaling_efficiency"] == 0.4
    assert to_csv(rows, view.COLUMNS).count("\n") == 4 and "1 process" in to_markdown(rows, view.COLUMNS, view.NUMERIC)
    lines = [json.loads(x) for x in view.save_lines(report, "t")]
    assert [x["world_size"] for x in lines] == [1, 2] and lines[1]["result"]["images_per_sec"] == 400
    assert len(view.renderables(report)) == 4


def test_ctrl_c_report_comes_from_the_status_files(tmp_path):
    from resnet_cli.bench.distributed import partial_report

    for r, times in ((0, [10.0, 12.0]), (1, [11.0])):
        status = {"rank": r, "phase": "interrupted", "raw": _raw(r, 2, times),
                  "baseline": _raw(0, 1, [8.0]) if r == 0 else None, "baseline_done": True}
        (tmp_path / f"local{r}.json").write_text(json.dumps(status))
    report = partial_report(_head(), str(tmp_path), 2, "interrupted (SIGINT)")
    assert report.interrupted and [r.rank for r in report.ranks] == [0, 1]
    assert not any(r.complete for r in report.ranks) and report.baseline.complete
    assert report.ranks[0].iterations == 2 and report.warnings[0] == "interrupted (SIGINT)"
    (tmp_path / "local1.json").unlink()  # one rank never wrote: no total from half the ranks
    report = partial_report(_head(), str(tmp_path), 2, "interrupted (SIGINT)")
    assert report.ranks == [] and report.images_per_sec is None and report.baseline is not None


def test_the_failure_line_names_the_root_cause():
    """A rank's own error wins; a 'connection closed' in one rank after another died of a signal blames the dead one."""
    from types import SimpleNamespace

    from resnet_cli.bench.distributed import root_cause

    def failed(**codes):
        return SimpleNamespace(failures={int(r[1:]): SimpleNamespace(exitcode=c, message="", timestamp=0)
                                         for r, c in codes.items()})

    own = {1: {"rank": 1, "error": "RuntimeError: boom", "error_at": 5.0},
           0: {"rank": 0, "error": "RuntimeError: Connection closed by peer", "error_at": 6.0}}
    assert root_cause(own, failed(r1=1, r0=-15)) == "rank 1 failed: RuntimeError: boom"
    gone = {0: {"rank": 0, "error": "RuntimeError: [pair.cc:553] Connection closed by peer [127.0.0.1]:4009",
                "error_at": 6.0}}
    assert root_cause(gone, failed(r1=-9, r0=1)).startswith("rank 1 died of SIGKILL (the kernel's out-of-memory")
    assert root_cause({}, failed(r0=-11)).startswith("rank 0 died of SIGSEGV")


def test_a_forward_bench_with_rank_variables_stays_plain(monkeypatch):
    """Some clusters set RANK/WORLD_SIZE in every container: only --mode train joins a torchrun job."""
    from resnet_cli.cli.bench_ddp import DdpOptions, wanted

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not wanted(DdpOptions(), "eval") and wanted(DdpOptions(), "train")
    monkeypatch.delenv("RANK")
    assert not wanted(DdpOptions(), "train") and wanted(DdpOptions(nproc=2), "eval")


def test_one_rank_under_an_external_torchrun(monkeypatch):
    """With torchrun's variables set, bench --mode train runs as that rank (here the only one, in this
    process): no launcher, no baseline for one rank, and rank 0 prints the report."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key, value in dict(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", LOCAL_WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                           MASTER_PORT=str(port)).items():
        monkeypatch.setenv(key, value)
    result = invoke(*[a for a in RUN if a not in ("--nproc", "2")], "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["world_size"] == 1 and [r["rank"] for r in data["ranks"]] == [0]
    assert data["baseline"] is None and data["scaling_efficiency"] is None
    assert data["ranks"][0]["allreduce"]["bytes_per_step"] > 0  # the hook ran even for one rank


def test_plot_reads_a_ddp_run_as_its_own_series(tmp_path):
    """`plot` of a --nproc run: its --save lines and its pretty-printed `--format json` document both give
    a one-process series and an `x2 ranks` series at the batch per rank, whose images/s is the total."""
    from resnet_cli.bench.distributed import assemble, rank_result, with_flops
    from resnet_cli.bench.history import load
    from resnet_cli.render import ddp as view
    from resnet_cli.render import export
    from resnet_cli.render.plot import series

    ranks = [rank_result(_raw(0, 2, [10.0, 20.0, 30.0])), rank_result(_raw(1, 2, [20.0, 20.0, 20.0]))]
    report = with_flops(assemble(_head(), ranks, rank_result(_raw(0, 1, [8.0, 8.0, 8.0])), []), 2_000_000_000, "c")
    saved, doc = tmp_path / "ddp.jsonl", tmp_path / "ddp.json"
    saved.write_text("\n".join(view.save_lines(report, "t")) + "\n")
    doc.write_text(export.to_json(report))
    assert len(doc.read_text().splitlines()) > 1  # many lines: not JSON Lines
    for path in (saved, doc):
        points, superseded = load(str(path))
        groups = series(points)
        assert superseded == 0 and list(groups) == ["resnet20", "resnet20 x2 ranks"], path
        one, two = groups["resnet20"][0], groups["resnet20 x2 ranks"][0]
        assert (one.batch_size, two.batch_size) == (4, 4) and (one.mode, two.mode) == ("train", "train")
        assert one.images_per_sec == pytest.approx(4 / 0.008) and two.images_per_sec == pytest.approx(400)
        assert two.latency_ms["median"] == pytest.approx(20.0)  # rank 0's step
    result = invoke("plot", str(doc), "--width", "80")
    assert result.exit_code == 0, result.stderr
    assert "resnet20 x2 ranks b4" in result.stdout


def test_plot_names_a_json_document_it_cannot_read(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"name": "not a bench report"}, indent=2))
    result = invoke("plot", str(path))
    assert result.exit_code == 2
    assert "is one JSON document but not a bench report" in result.stderr and "line 1" not in result.stderr


def test_a_network_with_parameters_that_get_no_gradient_trains_under_ddp():
    """A U-Net of depth 2 on resnet20 never runs its encoder's layer2/layer3: DDP must look for unused
    parameters (find_unused_parameters=True), or its second step fails; the run says so."""
    import torch

    from resnet_cli.analysis.training import parameters_without_gradient
    from resnet_cli.models import build_model, get_spec

    spec = "unet(encoder=resnet20, decoder_channels=16-8)"
    with torch.device("meta"):
        unused = parameters_without_gradient(build_model(get_spec(spec)), (2, 3, 32, 32))
        assert parameters_without_gradient(build_model(get_spec("resnet20")), (2, 3, 32, 32)) == ()
    assert unused and all(n.startswith(("encoder.layer2.", "encoder.layer3.")) for n in unused)
    result = invoke("bench", spec, "--size", "32", "--batch", "2", "--iters", "2", "--warmup", "1", "--mode", "train",
                    "--nproc", "2", "--threads", "1", "--no-baseline", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [r["iterations"] for r in data["ranks"]] == [2, 2]
    assert any(f"{len(unused)} parameter tensors get no gradient" in w for w in data["warnings"])
