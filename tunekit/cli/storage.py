"""``tunekit storage serve``: Optuna's gRPC storage proxy in front of a database, for studies with many workers."""

from __future__ import annotations

from typing import Annotated

import typer

from tunekit.cli._common import fail, handle_errors, messages, quiet

storage_app = typer.Typer(add_completion=False, no_args_is_help=True,
                          help="Storages for studies with many workers.")


@storage_app.command("serve")
@handle_errors
def serve(
    storage: Annotated[str, typer.Option(help="The database the proxy serves (postgresql://..., sqlite:///...).")],
    host: Annotated[str, typer.Option(help="The address to listen on (0.0.0.0: every interface).")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="The port to listen on.")] = 13000,
    threads: Annotated[int, typer.Option(help="Worker threads of the server (concurrent requests).")] = 32,
) -> None:
    """Run Optuna's gRPC storage proxy over STORAGE until interrupted; workers then use --storage grpc://HOST:PORT.

    Many workers each holding a database connection exhaust the database's connection limit; the proxy holds a
    few and caches the study in memory.
    """
    from concurrent.futures import ThreadPoolExecutor

    import optuna

    from tunekit.search import mask, open_storage
    from tunekit.utilities.imports import require

    quiet()
    require("grpc", "grpcio", extra="scale")
    if storage.split("://", 1)[0] in ("grpc", "redis", "rediss", "journal"):
        raise fail("tunekit storage serve proxies a database: give --storage postgresql://... or sqlite:///...")
    cached = optuna.storages.get_storage(open_storage(storage))  # Optuna's in-process cache over the RDB storage
    messages().print(f"serving {mask(storage)} on grpc://{host}:{port} (Ctrl-C stops)")
    pool = ThreadPoolExecutor(max_workers=threads)
    try:
        optuna.storages.run_grpc_proxy_server(cached, host=host, port=port, thread_pool=pool)
    except KeyboardInterrupt:
        # requests not yet started are dropped: the interpreter joins the pool's threads at exit, and a queue of
        # them would keep a stopped proxy alive
        pool.shutdown(wait=False, cancel_futures=True)
        raise typer.Exit(130) from None
