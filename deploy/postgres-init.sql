-- One database per service (SPEC §7: no service reads another's tables).
CREATE DATABASE sangkien_intake;
CREATE DATABASE sangkien_review;
CREATE DATABASE sangkien_tally;
CREATE DATABASE sangkien_awards;
