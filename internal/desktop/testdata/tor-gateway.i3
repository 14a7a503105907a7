# anklume trust colours for infrastructure tor-gateway (anklume desktop i3).
# Windows are matched on their class, "anklume.<domain>" or
# "anklume.<domain>.<machine>", set by the host-side program that opens them,
# never on their title. Each gets a [domain] tag in its trust colour.

# anonymous: untrusted (red)
#   launch anon-ws: xterm -class anklume.anonymous.anon-ws -e anklume shell anon-ws
for_window [class="^anklume\.anonymous(\..+)?$"] border normal 3, title_format "<span background='#cc3333' foreground='#ffffff'> [anonymous] </span> %title"

# tor-gateway: untrusted (red)
#   launch tor-gw: xterm -class anklume.tor-gateway.tor-gw -e anklume shell tor-gw
for_window [class="^anklume\.tor-gateway(\..+)?$"] border normal 3, title_format "<span background='#cc3333' foreground='#ffffff'> [tor-gateway] </span> %title"
