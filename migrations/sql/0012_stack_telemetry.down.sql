DROP TABLE IF EXISTS stack_k8s_events;
DROP TABLE IF EXISTS stack_pod_logs;
