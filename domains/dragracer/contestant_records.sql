-- Each queen's track record over her season: placements counted from her appearances.
SELECT
    c.season,
    c.contestant,
    c.age,
    c.hometown,
    min(a.rank) AS final_rank,
    count(*) FILTER (WHERE a.participant = 1) AS episodes_competed,
    count(*) FILTER (WHERE a.outcome = 'WIN') AS wins,
    count(*) FILTER (WHERE a.outcome = 'HIGH') AS highs,
    count(*) FILTER (WHERE a.outcome = 'LOW') AS lows,
    count(*) FILTER (WHERE a.outcome = 'BTM') AS bottoms,
    coalesce(sum(a.minichalw), 0) AS mini_challenge_wins,
    min(a.airdate) AS first_airdate,
    max(a.airdate) FILTER (WHERE a.participant = 1) AS last_airdate
FROM contestants AS c
LEFT JOIN appearances AS a ON a.season = c.season AND a.contestant = c.contestant
GROUP BY c.season, c.contestant, c.age, c.hometown
