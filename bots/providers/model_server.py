"""The local model's own process: llama-cpp-python's OpenAI-compatible server on loopback.

Started and watched by ``bots.providers.model_process``, never run inside a web process: a native
crash of llama.cpp here costs the reply in progress, not the server. It imports no Django.

    python -m bots.providers.model_server --model M.gguf --port N --n-ctx 2048 --parent-pid P
"""

import argparse
import ctypes
import os
import signal
import sys

# Seconds between the keep-alive comments of a streamed reply: the web process takes this process
# for hung after a few of them go missing (LOCAL_MODEL_TIMEOUT), even while it waits its turn.
PING_SECONDS = 5


def die_with_parent(parent_pid):
    """Ask Linux to kill this process when its parent dies, even by SIGKILL: no orphaned model."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the request above took hold
        sys.exit(0)


def load_without_extra_buffer_types():
    """Load models with llama.cpp's plain CPU buffers only, on every CPU; returns the parameters
    each model load was given, as they are handed over (the health check reports them).

    With extra buffer types, llama.cpp repacks weights for the CPU's optional features; on an
    Intel Xeon that advertises AMX in a virtual machine that does not grant it, the AMX path dies
    with SIGSEGV on the first decode (`ggml_backend_amx_mul_mat`, at `ldtilecfg`). The plain path
    runs everywhere the build does, at the same speed on a CPU without AMX (measured: within the
    run-to-run noise, about 70 tokens/s on 2 cores). llama-cpp-python's Llama takes no argument
    for it: it builds each model's parameters from the bindings' public
    ``llama_model_default_params``, which is changed here before any model loads. Should a later
    llama-cpp-python build them another way, no load is recorded and the health check says so.
    """
    import llama_cpp.llama_cpp as native

    defaults = native.llama_model_default_params
    given = []

    def model_params():
        params = defaults()
        params.use_extra_bufts = False
        given.append(params)
        return params

    native.llama_model_default_params = model_params
    return given


def create_app(model, alias, n_ctx, api_key, loads):
    """llama-cpp-python's server app for one model, plus GET /health (which takes no model lock);
    loads: the parameters each model load was given (``load_without_extra_buffer_types``)."""
    import sse_starlette.sse
    from llama_cpp.server import app as server
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    sse_starlette.sse.EventSourceResponse.DEFAULT_PING_INTERVAL = PING_SECONDS
    app = server.create_app(
        server_settings=ServerSettings(
            api_key=api_key,
            # Its default cuts a running reply short, silently, whenever another request arrives.
            interrupt_requests=False,
        ),
        model_settings=[ModelSettings(model=model, model_alias=alias, n_ctx=n_ctx, verbose=False)],
    )

    @app.get("/health", include_in_schema=False)
    async def health():
        # The model loaded at start-up (create_app loads it); None if no load came through the defaults.
        use_extra_bufts = bool(loads[-1].use_extra_bufts) if loads else None
        return {"pid": os.getpid(), "model": alias, "use_extra_bufts": use_extra_bufts}

    return app


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--alias", default="local")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--parent-pid", type=int, default=os.getppid())
    parser.add_argument("--nice", type=int, default=0)
    options = parser.parse_args(argv)
    die_with_parent(options.parent_pid)
    if options.nice:
        # Below the web process: pages and sockets stay quick while the model computes.
        os.nice(options.nice)
    loads = load_without_extra_buffer_types()
    app = create_app(options.model, options.alias, options.n_ctx, os.environ.get("PARLEY_MODEL_KEY") or None, loads)

    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=options.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
