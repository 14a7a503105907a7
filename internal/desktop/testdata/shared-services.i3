# anklume trust colours for infrastructure shared-services (anklume desktop i3).
# Windows are matched on their class, "anklume.<domain>" or
# "anklume.<domain>.<machine>", set by the host-side program that opens them,
# never on their title. Each gets a [domain] tag in its trust colour.

# pro: trusted (green)
#   launch pro-ws: xterm -class anklume.pro.pro-ws -e anklume shell pro-ws
for_window [class="^anklume\.pro(\..+)?$"] border normal 3, title_format "<span background='#33cc33' foreground='#000000'> [pro] </span> %title"

# perso: semi-trusted (yellow)
#   launch perso-ws: xterm -class anklume.perso.perso-ws -e anklume shell perso-ws
for_window [class="^anklume\.perso(\..+)?$"] border normal 3, title_format "<span background='#cccc33' foreground='#000000'> [perso] </span> %title"

# shared: semi-trusted (yellow)
#   launch shared-dns: xterm -class anklume.shared.shared-dns -e anklume shell shared-dns
#   launch shared-print: xterm -class anklume.shared.shared-print -e anklume shell shared-print
for_window [class="^anklume\.shared(\..+)?$"] border normal 3, title_format "<span background='#cccc33' foreground='#000000'> [shared] </span> %title"
