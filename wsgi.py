"""WSGI entry point: `gunicorn wsgi:app`.

The settings come from the environment, with the logs set up and the production profile's
refusals (app/ops/startup.py): an unsafe setting stops the worker at boot, and gunicorn
then stops with "Worker failed to boot" after the message naming the variable.
"""

from app import create_app
from app.ops.runtime import tune_garbage_collector
from app.ops.startup import process_settings

app = create_app(process_settings())
tune_garbage_collector()
