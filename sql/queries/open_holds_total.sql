-- How many credit holds are open and the credits they hold together (for the metrics gauges).
SELECT count(*) AS holds, coalesce(sum(amount), 0) AS held FROM credit_holds WHERE status = 'held'
