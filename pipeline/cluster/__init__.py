"""Running posepipe jobs on a Ray cluster: ``posepipe submit | status | logs`` over the Ray Jobs API.

- :mod:`pipeline.cluster.submission`: a job spec -> entrypoint + runtime_env (pure, no Ray calls).
- :mod:`pipeline.cluster.jobs_api`:   submit / status / logs / wait against http://HEAD:8265.
- :mod:`pipeline.cluster.commands`:   the sub-commands, registered by ``pipeline.cli``.

The cluster itself is described by ``ray_cluster.yaml`` (AWS, Ray cluster launcher).
"""
