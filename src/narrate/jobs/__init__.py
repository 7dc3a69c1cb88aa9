"""Long-running work: job records, the context a job runs with, and executors."""
