"""The customers domain: loyalty members and the segments their purchases put them in."""
