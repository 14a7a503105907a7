# anklume trust colours for infrastructure teacher-lab (anklume desktop i3).
# Windows are matched on their class, "anklume.<domain>" or
# "anklume.<domain>.<machine>", set by the host-side program that opens them,
# never on their title. Each gets a [domain] tag in its trust colour.

# teacher: trusted (green)
#   launch teacher-ws: xterm -class anklume.teacher.teacher-ws -e anklume shell teacher-ws
for_window [class="^anklume\.teacher(\..+)?$"] border normal 3, title_format "<span background='#33cc33' foreground='#000000'> [teacher] </span> %title"

# student-01: semi-trusted (yellow)
#   launch s01-shell: xterm -class anklume.student-01.s01-shell -e anklume shell s01-shell
#   launch s01-web: xterm -class anklume.student-01.s01-web -e anklume shell s01-web
for_window [class="^anklume\.student-01(\..+)?$"] border normal 3, title_format "<span background='#cccc33' foreground='#000000'> [student-01] </span> %title"

# student-02: semi-trusted (yellow)
#   launch s02-shell: xterm -class anklume.student-02.s02-shell -e anklume shell s02-shell
#   launch s02-web: xterm -class anklume.student-02.s02-web -e anklume shell s02-web
for_window [class="^anklume\.student-02(\..+)?$"] border normal 3, title_format "<span background='#cccc33' foreground='#000000'> [student-02] </span> %title"

# student-03: semi-trusted (yellow)
#   launch s03-shell: xterm -class anklume.student-03.s03-shell -e anklume shell s03-shell
#   launch s03-web: xterm -class anklume.student-03.s03-web -e anklume shell s03-web
for_window [class="^anklume\.student-03(\..+)?$"] border normal 3, title_format "<span background='#cccc33' foreground='#000000'> [student-03] </span> %title"
