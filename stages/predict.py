"""DVC stage `predict`, started by `accelerate launch --config_file ${predict.accelerate_config}`."""

from _entry import run

run("predict")
