"""The canary engine: the pure decision (decide), one tick (reconciler) and the job per canary."""
