"""Fleet: what serves the models — containers (Docker API), GPUs (NVML) and engine metrics (vLLM /metrics)."""
