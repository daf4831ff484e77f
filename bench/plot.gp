# Efficiency (or fairness) against overcommit, one line per policy, one panel per scenario, lock
# type and critical-section length (a multiplot; one panel when the matrix had one of each),
# from the summary.csv that `spindle bench` writes. bench/run-matrix calls it; by hand:
#
#   gnuplot -e "csv='DIR/summary.csv'; out='DIR/efficiency.png'; \
#               panels='homogeneous/ticket@500ns sleepy/ticket@500ns'; \
#               policies='cfs-nople cfs coboost adaptive'; metric='efficiency'; title='...'" bench/plot.gp
#
# panels and policies are space-separated words (the summary.csv "panel" and "policy" columns:
# scenario,panel,lock,cs_ns,policy,overcommit,efficiency,efficiency_min,efficiency_max,fairness);
# metric is a column name: efficiency (default) or fairness.

if (!exists("metric")) metric = 'efficiency'
if (!exists("title")) title = ''
col = (metric eq 'fairness') ? 10 : 7

set datafile separator ','
set datafile missing 'NaN'
n = words(panels)
cols = (n < 3) ? n : 3
rows = (n + cols - 1) / cols
set terminal pngcairo noenhanced size (cols * 520 < 800 ? 800 : cols * 520), (rows * 420 + 40) font ',10'
set output out
set multiplot layout rows, cols title title
set xlabel 'overcommit factor k (per scenario: spindle bench --help)'
set ylabel metric . ' (1.0 = ' . ((metric eq 'fairness') ? 'entitled share)' : 'physical limit)')
set logscale x 2
set xtics (1, 2, 4, 8, 16, 32, 64)
set yrange [0:*]
set grid
set key top right font ',9'
do for [p = 1:n] {
	panel = word(panels, p)
	set title panel
	# The rows of one policy in one panel are consecutive in summary.csv (it is sorted so), so
	# filtering with an undefined value for every other row still draws connected lines.
	plot for [i = 1:words(policies)] csv skip 1 \
		using 6:((strcol(2) eq panel && strcol(5) eq word(policies, i)) ? column(col) : 1/0) \
		with linespoints lw 2 pt (i + 4) title word(policies, i), \
		1 with lines dt 2 lc 'gray' notitle
}
unset multiplot
