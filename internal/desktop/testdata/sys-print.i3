# anklume trust colours for infrastructure sys-print (anklume desktop i3).
# Windows are matched on their class, "anklume.<domain>" or
# "anklume.<domain>.<machine>", set by the host-side program that opens them,
# never on their title. Each gets a [domain] tag in its trust colour.

# perso: trusted (green)
#   launch perso-ws: xterm -class anklume.perso.perso-ws -e anklume shell perso-ws
for_window [class="^anklume\.perso(\..+)?$"] border normal 3, title_format "<span background='#33cc33' foreground='#000000'> [perso] </span> %title"

# pro: trusted (green)
#   launch pro-ws: xterm -class anklume.pro.pro-ws -e anklume shell pro-ws
for_window [class="^anklume\.pro(\..+)?$"] border normal 3, title_format "<span background='#33cc33' foreground='#000000'> [pro] </span> %title"

# sys-print: semi-trusted (yellow)
#   launch print-server: xterm -class anklume.sys-print.print-server -e anklume shell print-server
for_window [class="^anklume\.sys-print(\..+)?$"] border normal 3, title_format "<span background='#cccc33' foreground='#000000'> [sys-print] </span> %title"
