"""The operations room: what keeps ChefOps observable, backed up and small.

One module per concern (import the submodule you need; this package imports nothing):

* ``metrics`` - GET /metrics and the request-counting middleware;
* ``alerts`` - the alert rules of deploy/prometheus/alerts.yml judged without Prometheus
  (``manage.py check_alerts``, the operations page, the post-deploy check);
* ``reports`` - database, disk, table and outbox read-outs (``manage.py dbreport``);
* ``backups`` - the backup storage and pg_dump/pg_restore (``manage.py backup``, ``restore``);
* ``retention`` / ``retention_tasks`` - purges and archives, and their daily Celery task;
* ``storage`` / ``storage_config`` / ``storage_s3`` - the archive and backup storages;
* ``jobs`` / ``joblocks`` - scheduled jobs' last success, leases and period claims;
* ``admin`` - the admin's operations page (/admin/operations/).

The management commands stay in chefops/management/commands, where Django finds them.
"""
