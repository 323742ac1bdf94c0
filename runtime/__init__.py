"""The runtime floor: services, the runner, jobs, the worker and task entry points; above graphs/, below server/."""
