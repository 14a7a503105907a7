# anklume trust colours for infrastructure developer (anklume desktop i3).
# Windows are matched on their class, "anklume.<domain>" or
# "anklume.<domain>.<machine>", set by the host-side program that opens them,
# never on their title. Each gets a [domain] tag in its trust colour.

# anklume: admin (blue)
#   launch anklume-instance: xterm -class anklume.anklume.anklume-instance -e anklume shell anklume-instance
for_window [class="^anklume\.anklume(\..+)?$"] border normal 3, title_format "<span background='#3333ff' foreground='#ffffff'> [anklume] </span> %title"

# dev: trusted (green)
#   launch dev-db: xterm -class anklume.dev.dev-db -e anklume shell dev-db
#   launch dev-test: xterm -class anklume.dev.dev-test -e anklume shell dev-test
#   launch dev-ws: xterm -class anklume.dev.dev-ws -e anklume shell dev-ws
for_window [class="^anklume\.dev(\..+)?$"] border normal 3, title_format "<span background='#33cc33' foreground='#000000'> [dev] </span> %title"
