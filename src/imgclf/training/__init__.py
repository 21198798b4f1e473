"""Training: the fit loop every training pipeline shares, and its Optuna tuning.

Modules:

* :mod:`imgclf.training.config`: ``parse_training_config`` validates a
  ``training`` parameter block (epochs, batch size, optimizer, schedule,
  class weights, augmentation, callbacks, determinism).
* :mod:`imgclf.training.fit`: ``train_model`` compiles and fits a Keras model
  on an image index, resumably, and returns its history.
* :mod:`imgclf.training.summary`: the training summary ("history") every training
  writes and the leaderboard reads.
* :mod:`imgclf.training.callbacks`: the callbacks ``train_model`` adds (epoch
  log with learning rate and seconds, resumable early stopping state).
* :mod:`imgclf.training.search_space`: search spaces declared in parameters:
  parse, suggest values, apply them to a variant's parameters.
* :mod:`imgclf.training.tuning`: the ``tuning`` parameter block, Optuna samplers and
  pruners.
* :mod:`imgclf.training.storage`: Optuna storages from a URL (SQL, journal file).
* :mod:`imgclf.training.study`: the study loop shared by tuning workers.
* :mod:`imgclf.training.trials`: a study's results: the best trial, a table of trials
  (its plots are in :mod:`imgclf.reporting.tuning`).
* :mod:`imgclf.training.objective`: ``tune_model``, the objective that trains a
  Keras model per trial.

Import the modules themselves (``from imgclf.training.fit import train_model``):
this package does not import TensorFlow on its own.
"""
