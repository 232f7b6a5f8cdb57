"""Cluster execution (SLURM): settings, submission, the job body and diagnosis of jobs."""
