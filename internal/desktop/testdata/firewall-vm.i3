# anklume trust colours for infrastructure firewall-vm (anklume desktop i3).
# Windows are matched on their class, "anklume.<domain>" or
# "anklume.<domain>.<machine>", set by the host-side program that opens them,
# never on their title. Each gets a [domain] tag in its trust colour.

# anklume: admin (blue)
#   launch anklume-firewall: xterm -class anklume.anklume.anklume-firewall -e anklume shell anklume-firewall
#   launch anklume-instance: xterm -class anklume.anklume.anklume-instance -e anklume shell anklume-instance
for_window [class="^anklume\.anklume(\..+)?$"] border normal 3, title_format "<span background='#3333ff' foreground='#ffffff'> [anklume] </span> %title"

# perso: trusted (green)
#   launch perso-ws: xterm -class anklume.perso.perso-ws -e anklume shell perso-ws
for_window [class="^anklume\.perso(\..+)?$"] border normal 3, title_format "<span background='#33cc33' foreground='#000000'> [perso] </span> %title"

# pro: trusted (green)
#   launch pro-ws: xterm -class anklume.pro.pro-ws -e anklume shell pro-ws
for_window [class="^anklume\.pro(\..+)?$"] border normal 3, title_format "<span background='#33cc33' foreground='#000000'> [pro] </span> %title"

# browsing: untrusted (red)
#   launch browse-vm: xterm -class anklume.browsing.browse-vm -e anklume shell browse-vm
for_window [class="^anklume\.browsing(\..+)?$"] border normal 3, title_format "<span background='#cc3333' foreground='#ffffff'> [browsing] </span> %title"
