"""DVC stage `train`, started by `accelerate launch --config_file ${train.accelerate_config}`."""

from _entry import run

run("train")
