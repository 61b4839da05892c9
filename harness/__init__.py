"""The engine: config, registry, data, the training loop, stage cache, results store,
evaluation, teachers and tracking.

Importing it changes nothing about the process; the entry points call
`harness.process.configure_process()` for the settings a run needs."""
