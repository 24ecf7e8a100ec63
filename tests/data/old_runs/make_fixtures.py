"""Make run directories with the code at 3b49d14 (before issue 18), stopped on their call budget."""
import asyncio, os, shutil, sys, json
from pathlib import Path
root = Path(sys.argv[1])
os.environ["AUTOEVOL_HOME"] = str(root / "_home")
from autoevol.api import Roles, run_async, evolve_async
from autoevol.config import EvolveSettings, ExecSettings, OptimizeSettings
from autoevol.data.source import DataSource
from autoevol.errors import BudgetExhausted
from autoevol.llm.spec import parse_model_spec
from autoevol.methods import load_method
from tests.support.optimize_script import Child, scripted_world, write_data

PLAN = {"e0": [Child("a", 3), Child("b", 8)], "a": [Child("c", 1), Child("d", 6)]}
roles = Roles(evol=parse_model_spec("openai:evol", base_url="http://127.0.0.1:9/v1"),
              optimizer=parse_model_spec("openai:opt", base_url="http://127.0.0.1:9/v1"))

def stopped(coro):
    try:
        asyncio.run(coro)
    except BudgetExhausted as e:
        print("stopped:", e)
    else:
        raise SystemExit("expected a stop")

for name, n in (("run", 24), ("evolve", 12)):
    d = root / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    write_data(d / "data.jsonl", n)

world = scripted_world(PLAN)
stopped(run_async(DataSource(root / "run" / "data.jsonl"), roles=roles, out=root / "run" / "run",
                  settings=OptimizeSettings(dev_size=8, batch_size=3, steps=2, candidates=2),
                  evolve_settings=EvolveSettings(rounds=2),
                  exec_settings=ExecSettings(quiet=True, max_calls=int(sys.argv[2]), export=("alpaca",)),
                  backends=world.backends))
world = scripted_world(PLAN)
stopped(evolve_async(DataSource(root / "evolve" / "data.jsonl"), methods=(load_method("initial"),), roles=roles,
                     out=root / "evolve" / "run", settings=EvolveSettings(rounds=2),
                     exec_settings=ExecSettings(quiet=True, max_calls=16, export=("alpaca", "sharegpt")),
                     backends=world.backends))
shutil.rmtree(root / "_home")
