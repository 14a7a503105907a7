# anklume trust colours for infrastructure pro-workstation (anklume desktop i3).
# Windows are matched on their class, "anklume.<domain>" or
# "anklume.<domain>.<machine>", set by the host-side program that opens them,
# never on their title. Each gets a [domain] tag in its trust colour.

# anklume: admin (blue)
#   launch anklume-instance: xterm -class anklume.anklume.anklume-instance -e anklume shell anklume-instance
for_window [class="^anklume\.anklume(\..+)?$"] border normal 3, title_format "<span background='#3333ff' foreground='#ffffff'> [anklume] </span> %title"

# perso: trusted (green)
#   launch perso-desktop: xterm -class anklume.perso.perso-desktop -e anklume shell perso-desktop
for_window [class="^anklume\.perso(\..+)?$"] border normal 3, title_format "<span background='#33cc33' foreground='#000000'> [perso] </span> %title"

# pro: trusted (green)
#   launch pro-dev: xterm -class anklume.pro.pro-dev -e anklume shell pro-dev
#   launch pro-mail: xterm -class anklume.pro.pro-mail -e anklume shell pro-mail
for_window [class="^anklume\.pro(\..+)?$"] border normal 3, title_format "<span background='#33cc33' foreground='#000000'> [pro] </span> %title"

# shared: semi-trusted (yellow)
#   launch shared-print: xterm -class anklume.shared.shared-print -e anklume shell shared-print
for_window [class="^anklume\.shared(\..+)?$"] border normal 3, title_format "<span background='#cccc33' foreground='#000000'> [shared] </span> %title"

# browsing: untrusted (red)
#   launch browse-vm: xterm -class anklume.browsing.browse-vm -e anklume shell browse-vm
for_window [class="^anklume\.browsing(\..+)?$"] border normal 3, title_format "<span background='#cc3333' foreground='#ffffff'> [browsing] </span> %title"
