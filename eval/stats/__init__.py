"""How per-clip scores become reported figures: ``bootstrap`` (mean, spread, percentile-bootstrap
interval, best-of-N), ``aggregate`` (the harness's ``Aggregator`` over seeds, samples, clips and
frames), ``drift`` (how fast a rollout's per-frame curve degrades) and ``summary`` (the drift and
training-cost blocks of a result row). Statistics over scores go here, never the scores
themselves.
"""
