"""Benchmark suite for hcserver: load with wrk, compare with bare Tornado baselines, print one table.

python -m bench            # full suite (< 10 min on 2 cores)
python -m bench --quick    # one-minute subset
python -m bench --scenario burst
"""
