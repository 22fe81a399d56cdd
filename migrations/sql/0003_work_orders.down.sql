DROP TABLE IF EXISTS work_order_log;
DROP TABLE IF EXISTS work_order_annotations;
DROP TABLE IF EXISTS work_order_labels;
DROP TABLE IF EXISTS work_order_targets;
DROP TABLE IF EXISTS work_orders;
DROP TABLE IF EXISTS work_order_schedule_runs;
DROP TABLE IF EXISTS work_order_schedules;
