# Chart of tests/bench/compare.sh: server CPU per answer (left) and QPS (right) per
# workload and thread count, one bar per server. Called by benchlib.py as
#   gnuplot -e "datafile='compare.dat'; outfile='compare.svg'; ncols=6" compare.gnuplot
# compare.dat: a header line "category server1 server2 ...", then two blocks (index 0: CPU us
# per answer, index 1: QPS in thousands), one line per "WORKLOAD tN" category (HIT = CACHE-HIT,
# MISS = FORWARD-MISS; tN = N threads); "?" = not run.
set terminal svg size 1400,600 dynamic enhanced font "sans,12" background rgb "white"
set output outfile
set datafile missing "?"
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key outside top center horizontal autotitle columnheader
set grid ytics
set xtics nomirror scale 0 font ",11"
set multiplot layout 1,2 title "names vs peers on loopback (dnsperf); lower CPU and higher QPS are better"
set title "server CPU per answer (us, log scale)"
set logscale y
set yrange [0.5:*]
plot for [i=2:ncols] datafile index 0 using i:xtic(1) title columnheader(i)
set title "queries per second (thousands)"
unset key
unset logscale y
set yrange [0:*]
plot for [i=2:ncols] datafile index 1 using i:xtic(1) title columnheader(i)
unset multiplot
